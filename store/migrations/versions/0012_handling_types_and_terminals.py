"""Handling types (issue 21 item 5) and terminal numbers (item 8).

- `cases.joint_agencies`: a joint case's (联办件) agencies involved besides the lead, [{"code", "name"}], which
  a bad review's work order lists (Shantou art. 29). NULL for every other case and for the cases already
  there: none of them could be `joint` before this revision.
- `evaluations.terminal_id`: the number of the self-service terminal a rating was given at (Shantou
  art. 23: 自助终端机评价界面应增设终端机编号信息). NULL for the ratings already there: nobody told us.

No figure changes for the rows already there (an online consultation, which leaves the participation
rate's base, could not be stored before), so no day is marked dirty. The columns are added in place
(`ALTER TABLE … ADD COLUMN` on every backend), so SQLite keeps the triggers of 0006 on both tables; the
downgrade drops them in place as well.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('cases', sa.Column('joint_agencies', store.coltypes.JSONText(), nullable=True))
    op.add_column('evaluations', sa.Column('terminal_id', sa.String(length=100), nullable=True))


def downgrade() -> None:
    # In place too (SQLite ≥ 3.35 drops a column itself): a batch would copy `cases` into a new table, which the
    # foreign keys of evaluations and work orders refuse, and would lose the triggers of 0006.
    op.drop_column('evaluations', 'terminal_id')
    op.drop_column('cases', 'joint_agencies')
