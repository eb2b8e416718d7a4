"""What an upheld appeal and a callback answer do to the figures and the blacklist (issue 21).

- `stats_days.to_rate`: the cases that should be rated, the participation rate's base. A case whose
  every rating was judged false on an upheld appeal (不予采纳, Fujian 十三, Shandong art. 17) is neither
  rated nor unrated: it leaves the base, so an agency does not lose participation by winning an appeal.
  Every day already there is marked dirty, so that the next ticks rebuild it with the new count; until
  then those days are computed live.
- A callback answer `dissatisfied` is no rating (Hainan art. 15 records the rater's latest rating only
  when they are satisfied). The ones stored before are excluded, so that they no longer stand as the
  case's latest rating and score.
- A strike counts a false review, not an appeal: a batch or bundle (一件事) rating given at once is one
  review however many of its work orders were appealed, and it is dated by when the review was made
  (Shandong art. 17 counts the reviews a rater made within a year). The strikes already there are made
  to name the review the rater gave (a batch or bundle copy's `origin_id`) and to take its date; a review
  struck several times keeps one strike, and a unique key keeps it so. Bars already placed are left as
  they are: the policy's numbers that would recount them are not known to a migration.

The downgrade drops the column and the unique key; the data steps are not undone.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CALLBACK_NOT_A_RATING = """
UPDATE evaluations SET status = 'excluded'
WHERE via = 'callback' AND status = 'valid' AND grade IN ('dissatisfied', 'very_dissatisfied')
"""
STRIKE_THE_REVIEW = """
UPDATE rater_strikes SET evaluation_id = (
    SELECT e.origin_id FROM evaluations e WHERE e.id = rater_strikes.evaluation_id)
WHERE evaluation_id IN (
    SELECT e.id FROM evaluations e WHERE e.via IN ('batch', 'bundle') AND e.origin_id IS NOT NULL)
"""
# A derived table, so that MySQL accepts the table it deletes from in the subquery.
ONE_STRIKE_A_REVIEW = """
DELETE FROM rater_strikes WHERE id NOT IN (
    SELECT kept FROM (SELECT MIN(id) AS kept FROM rater_strikes GROUP BY contact_id, evaluation_id) k)
"""


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    with op.batch_alter_table('stats_days', schema=None) as batch_op:
        batch_op.add_column(sa.Column('to_rate', sa.Integer(), nullable=False, server_default='0'))
    op.execute(CALLBACK_NOT_A_RATING)
    op.execute(STRIKE_THE_REVIEW)
    at = bind.dialect.identifier_preparer.quote('at')
    op.execute(f"UPDATE rater_strikes SET {at} = ("
               f"SELECT e.created_at FROM evaluations e WHERE e.id = rater_strikes.evaluation_id)")
    op.execute(ONE_STRIKE_A_REVIEW)
    with op.batch_alter_table('rater_strikes', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_rater_strikes_review', ['contact_id', 'evaluation_id'])
    if dialect in ("postgresql", "sqlite"):  # every day there is already: rebuilt by the next ticks
        cast = "CAST(completed_at AS date)" if dialect == "postgresql" else "date(completed_at)"
        op.execute(f"INSERT INTO stats_dirty (day) SELECT DISTINCT {cast} FROM cases")


def downgrade() -> None:
    with op.batch_alter_table('rater_strikes', schema=None) as batch_op:
        batch_op.drop_constraint('uq_rater_strikes_review', type_='unique')
    with op.batch_alter_table('stats_days', schema=None) as batch_op:
        batch_op.drop_column('to_rate')
