"""Official calendar years imported by `haochaping calendar import`: the State Council's holidays and make-up
working days of a year the packaged calendar (chinesecalendar) does not know yet, kept in the database so that
every worker counts working days alike.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'calendar_years',
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('holidays', store.coltypes.JSONText(), nullable=False),
        sa.Column('workdays', store.coltypes.JSONText(), nullable=False),
        sa.Column('source', sa.String(length=300), nullable=True),
        sa.Column('imported_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('imported_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('year'),
    )


def downgrade() -> None:
    op.drop_table('calendar_years')
