"""The audit table: who revealed a rater's number, exported personal data unmasked, changed a user,
published a period or decided an appeal; append-only.

Until now an unmasked export was a log line and nothing else, and a user's changes left no trace at
all. Each such act is now a row written with the change it records. A record that can be edited is no
record: PostgreSQL and SQLite refuse an UPDATE or a DELETE of `audit_events` with a trigger, as they
do for the frozen snapshots (0007, 0008).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT = "audit_events is append-only: an audit row is never changed or deleted"
PG = [
    f"""CREATE FUNCTION audit_events_kept() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '{KEPT}';
    END $$""",
    """CREATE TRIGGER audit_events_kept BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_kept()""",
    # A TRUNCATE has no rows to fire on: refused once per statement.
    """CREATE TRIGGER audit_events_not_truncated BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_kept()""",
]
PG_DOWN = ["DROP TRIGGER IF EXISTS audit_events_not_truncated ON audit_events",
           "DROP TRIGGER IF EXISTS audit_events_kept ON audit_events",
           "DROP FUNCTION IF EXISTS audit_events_kept()"]
SQLITE = [f"CREATE TRIGGER audit_events_not_updated BEFORE UPDATE ON audit_events BEGIN "
          f"SELECT RAISE(ABORT, '{KEPT}'); END",
          f"CREATE TRIGGER audit_events_not_deleted BEFORE DELETE ON audit_events BEGIN "
          f"SELECT RAISE(ABORT, '{KEPT}'); END"]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS audit_events_not_deleted", "DROP TRIGGER IF EXISTS audit_events_not_updated"]


def upgrade() -> None:
    op.create_table(
        'audit_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target_kind', sa.String(length=32), nullable=True),
        sa.Column('target_id', sa.String(length=100), nullable=True),
        sa.Column('details', store.coltypes.JSONText(), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_audit_events_at'), 'audit_events', ['at'], unique=False)
    op.create_index(op.f('ix_audit_events_action'), 'audit_events', ['action'], unique=False)
    for sql in {"postgresql": PG, "sqlite": SQLITE}.get(op.get_bind().dialect.name, []):
        op.execute(sql)


def downgrade() -> None:
    for sql in {"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}.get(op.get_bind().dialect.name, []):
        op.execute(sql)
    op.drop_index(op.f('ix_audit_events_action'), table_name='audit_events')
    op.drop_index(op.f('ix_audit_events_at'), table_name='audit_events')
    op.drop_table('audit_events')
