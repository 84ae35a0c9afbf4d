"""The metric names a PromQL expression reads, and the catalogue of docs/metrics.md they must come from."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Series every Prometheus target has, or that the Python client exports for every process.
BUILTIN = {"up", "ALERTS", "process_cpu_seconds_total", "process_resident_memory_bytes",
           "process_open_fds", "process_max_fds", "process_virtual_memory_bytes",
           "process_start_time_seconds"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
            "offset", "bool", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def catalogue() -> dict[str, str]:
    """metric name → type, from the tables of docs/metrics.md (the contract)."""
    names: dict[str, str] = {}
    for line in (REPO / "docs/metrics.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram)", line)
        if m:
            names[m.group(1)] = m.group(2)
    return names


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (label names, functions and keywords removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', expr)  # strings
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range selectors
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def unknown_names(expr: str, recorded: set[str]) -> set[str]:
    """Names in expr that are neither in the catalogue, recorded by our rules, nor built in."""
    cat = catalogue()
    out = set()
    for name in metric_names(expr):
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and cat.get(name.removesuffix(suffix)) == "histogram":
                base = name.removesuffix(suffix)
        if base in cat or name in recorded or name in BUILTIN:
            continue
        out.add(name)
    return out
