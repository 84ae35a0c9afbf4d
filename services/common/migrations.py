"""Developer helper: write a service's next alembic revision by autogenerate against a scratch SQLite.

    python -m services.common.migrations services/registry/adapters/db/migrations "message"
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine


def revise(script_location: Path, message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/scratch.db")
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(script_location))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    revise(Path(sys.argv[1]), sys.argv[2])
