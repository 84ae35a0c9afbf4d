"""a run's inputs are frozen beside it (rows and prior-year context, compressed JSON)

Revision ID: d8a2c5e1f047
Revises: c41f0a7d2e93
Create Date: 2026-12-08 11:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'd8a2c5e1f047'
down_revision = 'c41f0a7d2e93'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_inputs',
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('snapshot', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('run_id')
    )


def downgrade() -> None:
    op.drop_table('run_inputs')
