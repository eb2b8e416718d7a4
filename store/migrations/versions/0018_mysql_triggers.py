"""The MySQL family only (issue 26): the triggers PostgreSQL and SQLite have had since 0006, 0007, 0008 and 0009.

- The daily statistics' dirty marks (0006): a case inserted, or moved (its day, agency, item or clerk changed),
  and every evaluation and work order inserted, updated or deleted marks its case's UTC day in `stats_dirty`, in
  the same transaction, so that no code path can forget to. Without them the daily figures were never rebuilt on
  MySQL. Every day with cases is marked once here, rebuilt by the next ticks.
- A published snapshot is never changed nor deleted (0007, 0008), an audit row neither (0009): refused with
  SQLSTATE 45000.
Creating triggers needs the TRIGGER privilege (and, with binary logging on, SUPER or
log_bin_trust_function_creators): docs/operations.md says so.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CASE_COLUMNS = ("completed_at", "agency_code", "agency_name", "item_code", "item_name", "staff_id", "staff_name")
SNAPSHOT = "stats_snapshots is frozen: a published period is never changed or deleted"
AUDIT = "audit_events is append-only: an audit row is never changed or deleted"


def _of_case(table: str, event: str) -> str:
    cases = {"INSERT": "NEW.case_id", "DELETE": "OLD.case_id", "UPDATE": "OLD.case_id, NEW.case_id"}[event]
    return (f"CREATE TRIGGER stats_dirty_{table}_{event.lower()} AFTER {event} ON {table} FOR EACH ROW "
            f"INSERT INTO stats_dirty (day) SELECT DATE(completed_at) FROM cases WHERE id IN ({cases})")


def _refused(name: str, table: str, event: str, message: str) -> str:
    return (f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW "
            f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'")


MYSQL = [
    "CREATE TRIGGER stats_dirty_cases_insert AFTER INSERT ON cases FOR EACH ROW "
    "INSERT INTO stats_dirty (day) VALUES (DATE(NEW.completed_at))",
    "CREATE TRIGGER stats_dirty_cases_update AFTER UPDATE ON cases FOR EACH ROW "
    "IF NOT (" + " AND ".join(f"OLD.{c} <=> NEW.{c}" for c in CASE_COLUMNS) + ") THEN "
    "INSERT INTO stats_dirty (day) VALUES (DATE(OLD.completed_at)), (DATE(NEW.completed_at)); END IF",
    *(_of_case(t, e) for t in ("evaluations", "work_orders") for e in ("INSERT", "UPDATE", "DELETE")),
    _refused("stats_snapshots_frozen", "stats_snapshots", "UPDATE", SNAPSHOT),
    _refused("stats_snapshots_kept", "stats_snapshots", "DELETE", SNAPSHOT),
    _refused("audit_events_not_updated", "audit_events", "UPDATE", AUDIT),
    _refused("audit_events_not_deleted", "audit_events", "DELETE", AUDIT),
]
NAMES = ["stats_dirty_cases_insert", "stats_dirty_cases_update",
         *(f"stats_dirty_{t}_{e}" for t in ("evaluations", "work_orders") for e in ("insert", "update", "delete")),
         "stats_snapshots_frozen", "stats_snapshots_kept", "audit_events_not_updated", "audit_events_not_deleted"]


def upgrade() -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for sql in MYSQL:
        op.execute(sql)
    op.execute("INSERT INTO stats_dirty (day) SELECT DISTINCT DATE(completed_at) FROM cases")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for name in NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
