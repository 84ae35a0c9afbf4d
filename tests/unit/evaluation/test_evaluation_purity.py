"""The evaluation domain stays pure: stdlib, pydantic, yaml and numpy only."""

import ast
import sys
from pathlib import Path

import services.evaluation.domain as domain

ALLOWED_THIRD_PARTY = {"pydantic", "yaml", "numpy"}


def test_domain_imports_only_stdlib_pydantic_yaml_numpy():
    offenders = []
    for path in Path(domain.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY and top != "__future__":
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
