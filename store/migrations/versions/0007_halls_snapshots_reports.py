"""Halls and districts on cases, evaluation versions, frozen statistics snapshots, upstream reports.

Every day already there is marked dirty, so that the next ticks build its figures for the two new
ways of grouping (hall, district); until then those days are computed live.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.coltypes

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FROZEN = "stats snapshots are frozen: publish a new period instead of changing one"
PG = [
    f"""CREATE FUNCTION stats_snapshots_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '{FROZEN}';
    END $$""",
    """CREATE TRIGGER stats_snapshots_frozen BEFORE UPDATE ON stats_snapshots
    FOR EACH ROW EXECUTE FUNCTION stats_snapshots_frozen()""",
]
PG_DOWN = ["DROP TRIGGER IF EXISTS stats_snapshots_frozen ON stats_snapshots",
           "DROP FUNCTION IF EXISTS stats_snapshots_frozen()"]
SQLITE = [f"CREATE TRIGGER stats_snapshots_frozen BEFORE UPDATE ON stats_snapshots BEGIN "
          f"SELECT RAISE(ABORT, '{FROZEN}'); END"]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS stats_snapshots_frozen"]


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hall_code', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('hall_name', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('district_code', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('district_name', sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_hall_code'), ['hall_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_district_code'), ['district_code'], unique=False)
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
    op.create_table(
        'stats_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=64), nullable=False),
        sa.Column('from_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('to_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('label'),
    )
    op.create_table(
        'upstream_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('profile', sa.String(length=64), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=160), nullable=False),
        sa.Column('record', store.coltypes.JSONText(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('lease_until', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('sent_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('idempotency_key'),
        sa.UniqueConstraint('profile', 'evaluation_id', 'version', name='uq_upstream_reports_version'),
    )
    op.create_index(op.f('ix_upstream_reports_evaluation_id'), 'upstream_reports', ['evaluation_id'], unique=False)
    op.create_index('ix_upstream_reports_due', 'upstream_reports', ['status', 'next_attempt_at'], unique=False)
    dialect = op.get_bind().dialect.name
    for sql in {"postgresql": PG, "sqlite": SQLITE}.get(dialect, []):
        op.execute(sql)
    if dialect in ("postgresql", "sqlite"):
        cast = "CAST(completed_at AS date)" if dialect == "postgresql" else "date(completed_at)"
        op.execute(f"INSERT INTO stats_dirty (day) SELECT DISTINCT {cast} FROM cases")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in {"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}.get(dialect, []):
        op.execute(sql)
    op.drop_index('ix_upstream_reports_due', table_name='upstream_reports')
    op.drop_index(op.f('ix_upstream_reports_evaluation_id'), table_name='upstream_reports')
    op.drop_table('upstream_reports')
    op.drop_table('stats_snapshots')
    op.execute("DELETE FROM stats_days WHERE dim IN ('hall', 'district')")
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_column('version')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_district_code'))
        batch_op.drop_index(batch_op.f('ix_cases_hall_code'))
        batch_op.drop_column('district_name')
        batch_op.drop_column('district_code')
        batch_op.drop_column('hall_name')
        batch_op.drop_column('hall_code')
