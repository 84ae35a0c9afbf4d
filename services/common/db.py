"""Async engines for SQLite and PostgreSQL from one DATABASE_URL, and alembic upgrades on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

READ_ONLY = "yaosu_read_only"  # the execution option of a read transaction (see UnitOfWork.read)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives power loss
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn) -> None:  # noqa: ANN001
            # A writer takes the write lock at BEGIN: two deferred transactions that both upgrade to writers
            # would otherwise deadlock into SQLITE_BUSY. A reader (UnitOfWork.read) takes none: in WAL mode
            # it reads its snapshot while the writer writes.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        # pysqlite's own implicit BEGIN must be off for the explicit one above to be ours.
        @event.listens_for(engine.sync_engine, "connect")
        def _no_implicit_begin(dbapi_connection, _record) -> None:  # noqa: ANN001
            dbapi_connection.isolation_level = None

        return engine
    return create_async_engine(url, echo=echo, pool_size=20, max_overflow=20, pool_pre_ping=True)


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


async def migrate(engine: AsyncEngine, script_location: Path) -> None:
    """Apply the service's alembic migrations up to head on the engine's database."""

    def upgrade(sync_connection) -> None:  # noqa: ANN001
        config = Config()
        config.set_main_option("script_location", str(script_location))
        config.attributes["connection"] = sync_connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
