"""A callback's answer names the bad review it answers, and falls with it; snapshots cannot be deleted.

A callback's answer is stored as an evaluation of its own (the case's latest rating). Until now it
did not say which review it answered, so an appeal upheld after the callback left it valid: a review
judged malicious still counted, through its answer, as a rating and a score. Each existing answer is
linked to the work order it closed or reopened (the case's latest one created before it), and the
answers of reviews already excluded are excluded too.

Deleting a snapshot and inserting another under its label would edit a published period as surely as
an UPDATE: both are refused now.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK = """
UPDATE evaluations SET origin_id = (
    SELECT w.evaluation_id FROM work_orders w
    WHERE w.case_id = evaluations.case_id AND w.created_at <= evaluations.created_at
    ORDER BY w.created_at DESC, w.id DESC LIMIT 1)
WHERE via = 'callback' AND origin_id IS NULL
"""
EXCLUDE = """
UPDATE evaluations SET status = 'excluded'
WHERE via = 'callback' AND status = 'valid'
  AND origin_id IN (SELECT w.evaluation_id FROM work_orders w WHERE w.outcome = 'excluded')
"""
FROZEN = "stats snapshots are frozen: publish a new period instead of deleting one"
PG = ["""CREATE TRIGGER stats_snapshots_kept BEFORE DELETE ON stats_snapshots
      FOR EACH ROW EXECUTE FUNCTION stats_snapshots_frozen()"""]
PG_DOWN = ["DROP TRIGGER IF EXISTS stats_snapshots_kept ON stats_snapshots"]
SQLITE = [f"CREATE TRIGGER stats_snapshots_kept BEFORE DELETE ON stats_snapshots BEGIN "
          f"SELECT RAISE(ABORT, '{FROZEN}'); END"]
SQLITE_DOWN = ["DROP TRIGGER IF EXISTS stats_snapshots_kept"]


def upgrade() -> None:
    op.execute(LINK)
    op.execute(EXCLUDE)
    for sql in {"postgresql": PG, "sqlite": SQLITE}.get(op.get_bind().dialect.name, []):
        op.execute(sql)


def downgrade() -> None:
    for sql in {"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}.get(op.get_bind().dialect.name, []):
        op.execute(sql)
