"""change notices record an increment change (增价幅度) with its old and new value

Revision ID: a41c2e7d9b10
Revises: 917145dd4322
Create Date: 2026-12-07 21:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'a41c2e7d9b10'
down_revision = '917145dd4322'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('change_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('increment_fen', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('previous_increment_fen', sa.BigInteger(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('change_notices', schema=None) as batch_op:
        batch_op.drop_column('previous_increment_fen')
        batch_op.drop_column('increment_fen')
