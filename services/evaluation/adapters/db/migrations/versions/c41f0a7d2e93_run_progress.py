"""runs report their progress: a run is recorded as running when it starts

Revision ID: c41f0a7d2e93
Revises: b7d41e9c2a60
Create Date: 2026-12-08 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = 'c41f0a7d2e93'
down_revision = 'b7d41e9c2a60'
branch_labels = None
depends_on = None

PROGRESS = ('pools_done', 'pools_total', 'rows_done', 'rows_total')


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        for name in PROGRESS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.alter_column('completed_at', existing_type=sa.DateTime(timezone=True), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM runs WHERE status = 'running'")
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.alter_column('completed_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        for name in reversed(PROGRESS):
            batch_op.drop_column(name)
