"""indicator values as one record per enterprise-year, department and submission

The bulk upload writes one row per (year, credit code, source department, submission) holding the
submission's values as a JSON object, instead of one row per value: a county of 50,000 enterprises is
50,000 rows. Existing values move over grouped by the submission that recorded them (every value of one
submission was recorded at its time); going back keeps each department's latest value of each field.

Revision ID: b7d41e9c2a60
Revises: 55868b1e1b45
Create Date: 2026-12-08 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = 'b7d41e9c2a60'
down_revision = '55868b1e1b45'
branch_labels = None
depends_on = None


def _values_table() -> None:
    op.create_table('indicator_values',
    sa.Column('credit_code', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('source_department', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('value', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('submission_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('credit_code', 'year', 'field', 'source_department')
    )
    with op.batch_alter_table('indicator_values', schema=None) as batch_op:
        batch_op.create_index('ix_indicator_values_year', ['year', 'credit_code'], unique=False)


def upgrade() -> None:
    op.create_table('indicator_records',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('credit_code', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
    sa.Column('source_department', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('submission_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('year', 'credit_code', 'source_department', 'submission_id'),
    sqlite_with_rowid=False
    )
    document = ("json_group_object(field, value)" if op.get_bind().dialect.name == "sqlite"
                else "CAST(jsonb_object_agg(field, value) AS TEXT)")
    op.execute("INSERT INTO indicator_records (year, credit_code, source_department, submission_id, document, "
               f"recorded_at) SELECT year, credit_code, source_department, submission_id, {document}, "
               "MAX(recorded_at) FROM indicator_values GROUP BY year, credit_code, source_department, submission_id")
    with op.batch_alter_table('indicator_values', schema=None) as batch_op:
        batch_op.drop_index('ix_indicator_values_year')
    op.drop_table('indicator_values')


def downgrade() -> None:
    _values_table()
    each = ("json_each(r.document) AS v" if op.get_bind().dialect.name == "sqlite"
            else "jsonb_each_text(CAST(r.document AS JSONB)) AS v")
    # A department's latest record naming a field holds its value on record.
    op.execute("INSERT INTO indicator_values (credit_code, year, field, source_department, value, submission_id, "
               f"recorded_at) SELECT r.credit_code, r.year, v.key, r.source_department, v.value, r.submission_id, "
               f"r.recorded_at FROM indicator_records AS r, {each} WHERE NOT EXISTS (SELECT 1 FROM indicator_records "
               "AS later WHERE later.year = r.year AND later.credit_code = r.credit_code AND later.source_department "
               "= r.source_department AND later.recorded_at > r.recorded_at AND later.document LIKE "
               "'%\"' || v.key || '\":%')")
    op.drop_table('indicator_records')
