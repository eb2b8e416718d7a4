"""The hall (issue 28; Shantou art. 17–18, 23): rating devices at the windows and terminals' rating screens
(`hall_devices`, store/models.py HallDevice), the window a case was completed at (`cases.window_no`, which the
window's device turns to) and the window a rating was taken at (`evaluations.window_no`). Columns added null: no
stored row changes meaning, no day is marked dirty. An index on cases (hall_code, window_no, id) finds a window's
newest cases. The downgrade drops them.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'hall_devices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('hall_code', sa.String(length=100), nullable=False),
        sa.Column('window_no', sa.String(length=32), nullable=True),
        sa.Column('terminal_no', sa.String(length=64), nullable=True),
        sa.Column('staff_id', sa.String(length=100), nullable=True),
        sa.Column('staff_name', sa.String(length=100), nullable=True),
        sa.Column('label', sa.String(length=200), nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('revoked_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('last_seen_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    op.create_index(op.f('ix_hall_devices_hall_code'), 'hall_devices', ['hall_code'], unique=False)
    op.add_column('cases', sa.Column('window_no', sa.String(length=32), nullable=True))
    op.add_column('evaluations', sa.Column('window_no', sa.String(length=32), nullable=True))
    op.create_index('ix_cases_hall_window', 'cases', ['hall_code', 'window_no', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_hall_window', table_name='cases')
    op.drop_column('evaluations', 'window_no')
    op.drop_column('cases', 'window_no')
    op.drop_table('hall_devices')
