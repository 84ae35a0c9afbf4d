"""partial holds

A hold may be captured in parts (the continuous market's order holds): `partial` marks it, `released`
counts what went back to available. Resolved holds are filled in: what a one-shot hold did not post was
released when it resolved.

Revision ID: 6b2d0c1e4f7a
Revises: f341079a7812
Create Date: 2026-12-12 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '6b2d0c1e4f7a'
down_revision = 'f341079a7812'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('released', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('partial', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE holds SET released = amount - posted WHERE status <> 'pending'")


def downgrade() -> None:
    with op.batch_alter_table('holds', schema=None) as batch_op:
        batch_op.drop_column('partial')
        batch_op.drop_column('released')
