"""Alembic environment of the evaluation service: run by services.common.db.migrate with a live connection."""

from alembic import context

from services.evaluation.adapters.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
