"""Statistics per day: the figures of each UTC day of completed cases, and the days to rebuild.

Triggers mark a day dirty whenever a case, an evaluation or a work order of that day is written, in
the same transaction (a mark per change: see store.models.StatsDirty). PostgreSQL and SQLite get them; on other databases the statistics stay live.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns of a case whose change moves its figures (its group, its day).
CASE_COLUMNS = ("completed_at", "agency_code", "agency_name", "item_code", "item_name", "staff_id", "staff_name")

PG = [
    # Cases arrive in bulk: one statement-level insert of the days they bring.
    """CREATE FUNCTION stats_dirty_new_cases() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO stats_dirty (day) SELECT DISTINCT CAST(completed_at AS date) FROM new_rows;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER stats_dirty_cases_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stats_dirty_new_cases()""",
    """CREATE FUNCTION stats_dirty_moved_case() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO stats_dirty (day) VALUES (CAST(OLD.completed_at AS date)), (CAST(NEW.completed_at AS date));
      RETURN NULL;
    END $$""",
    "CREATE TRIGGER stats_dirty_cases_update AFTER UPDATE ON cases FOR EACH ROW WHEN ("
    + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in CASE_COLUMNS)
    + ") EXECUTE FUNCTION stats_dirty_moved_case()",
    """CREATE FUNCTION stats_dirty_of_case() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        INSERT INTO stats_dirty (day) SELECT CAST(completed_at AS date) FROM cases WHERE id = OLD.case_id;
      END IF;
      IF TG_OP <> 'DELETE' THEN
        INSERT INTO stats_dirty (day) SELECT CAST(completed_at AS date) FROM cases WHERE id = NEW.case_id;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER stats_dirty_evaluations AFTER INSERT OR UPDATE OR DELETE ON evaluations
    FOR EACH ROW EXECUTE FUNCTION stats_dirty_of_case()""",
    """CREATE TRIGGER stats_dirty_work_orders AFTER INSERT OR UPDATE OR DELETE ON work_orders
    FOR EACH ROW EXECUTE FUNCTION stats_dirty_of_case()""",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS stats_dirty_work_orders ON work_orders",
    "DROP TRIGGER IF EXISTS stats_dirty_evaluations ON evaluations",
    "DROP TRIGGER IF EXISTS stats_dirty_cases_update ON cases",
    "DROP TRIGGER IF EXISTS stats_dirty_cases_insert ON cases",
    "DROP FUNCTION IF EXISTS stats_dirty_of_case()",
    "DROP FUNCTION IF EXISTS stats_dirty_moved_case()",
    "DROP FUNCTION IF EXISTS stats_dirty_new_cases()",
]


def _sqlite_of_case(table: str, event: str, row: str) -> str:
    return (f"CREATE TRIGGER stats_dirty_{table}_{event.lower()} AFTER {event} ON {table} BEGIN "
            f"INSERT INTO stats_dirty (day) SELECT date(completed_at) FROM cases WHERE id = {row}.case_id; "
            "END")


SQLITE = [
    "CREATE TRIGGER stats_dirty_cases_insert AFTER INSERT ON cases BEGIN "
    "INSERT INTO stats_dirty (day) VALUES (date(NEW.completed_at)); END",
    f"CREATE TRIGGER stats_dirty_cases_update AFTER UPDATE OF {', '.join(CASE_COLUMNS)} ON cases BEGIN "
    "INSERT INTO stats_dirty (day) VALUES (date(OLD.completed_at)); "
    "INSERT INTO stats_dirty (day) VALUES (date(NEW.completed_at)); END",
    *(_sqlite_of_case(t, "INSERT", "NEW") for t in ("evaluations", "work_orders")),
    *(_sqlite_of_case(t, "DELETE", "OLD") for t in ("evaluations", "work_orders")),
    # An update that moves a row to another case marks both days.
    *(f"CREATE TRIGGER stats_dirty_{t}_update AFTER UPDATE ON {t} BEGIN "
      "INSERT INTO stats_dirty (day) SELECT date(completed_at) FROM cases WHERE id IN (OLD.case_id, "
      "NEW.case_id); END" for t in ("evaluations", "work_orders")),
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS stats_dirty_{name}" for name in (
    "cases_insert", "cases_update", "evaluations_insert", "work_orders_insert", "evaluations_delete",
    "work_orders_delete", "evaluations_update", "work_orders_update")]


def upgrade() -> None:
    op.create_table(
        'stats_days',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dim', sa.String(length=8), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('agency_code', sa.String(length=100), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=True),
        sa.Column('name', sa.String(length=300), nullable=True),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in (
            'cases', 'rated', 'score_sum', 'scored', 'bad', 'orders', 'rectified', 'overdue')),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_stats_days_dim_day', 'stats_days', ['dim', 'day'], unique=False)
    op.create_table('stats_dirty', sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('day', sa.Date(), nullable=False), sa.PrimaryKeyConstraint('id'))
    op.create_index(op.f('ix_stats_dirty_day'), 'stats_dirty', ['day'], unique=False)
    dialect = op.get_bind().dialect.name
    for sql in {"postgresql": PG, "sqlite": SQLITE}.get(dialect, []):
        op.execute(sql)
    if dialect in ("postgresql", "sqlite"):  # every day there is already: rebuilt by the next tick
        cast = "CAST(completed_at AS date)" if dialect == "postgresql" else "date(completed_at)"
        op.execute(f"INSERT INTO stats_dirty (day) SELECT DISTINCT {cast} FROM cases")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in {"postgresql": PG_DOWN, "sqlite": SQLITE_DOWN}.get(dialect, []):
        op.execute(sql)
    op.drop_index(op.f('ix_stats_dirty_day'), table_name='stats_dirty')
    op.drop_table('stats_dirty')
    op.drop_index('ix_stats_days_dim_day', table_name='stats_days')
    op.drop_table('stats_days')
