"""Per-visit clerk ratings of 承诺件 and 联办件 (issue 21 item 5; Shantou art. 22, 28, 29).

- `evaluations.visit_id`: the window visit a clerk-only rating was given at (the business system's id of the
  visit: the acceptance of the materials, a supplement …). NULL for every rating of the case itself, which is
  every rating already there.
- `evaluations.staff_id`, `evaluations.staff_name`: the clerk who served that visit (not necessarily the
  case's clerk, who hands out the result). NULL on the case's own ratings, whose clerk is the case's.

A visit rating rates the clerk only: it is not the case's rating, its follow-up nor its default, and only the
staff figures count it. No figure changes for the rows already there, so no day is marked dirty. The columns
are added in place, as in 0012, so SQLite keeps the triggers of 0006.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('evaluations', sa.Column('visit_id', sa.String(length=100), nullable=True))
    op.add_column('evaluations', sa.Column('staff_id', sa.String(length=100), nullable=True))
    op.add_column('evaluations', sa.Column('staff_name', sa.String(length=100), nullable=True))
    op.create_index('ix_evaluations_visit', 'evaluations', ['case_id', 'visit_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_evaluations_visit', table_name='evaluations')
    op.drop_column('evaluations', 'staff_name')
    op.drop_column('evaluations', 'staff_id')
    op.drop_column('evaluations', 'visit_id')
