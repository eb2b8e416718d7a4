"""The calls a switch's IVR script drives through the JSON keypad dialog (issue 24; store/models.py HotlineCall).

A new table only: nothing already stored changes, no day is marked dirty. `call_id` is the switch's own id of
the call (FreeSWITCH's channel uuid, an Asterisk uniqueid, a vendor's call id), unique so that a start posted
twice is one call; `updated_at` is indexed for the prune `tick` runs on every pass. The downgrade drops the
table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'hotline_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('work_order_id', sa.Integer(), nullable=True),
        sa.Column('locale', sa.String(length=16), nullable=False),
        sa.Column('step', sa.Integer(), nullable=False),
        sa.Column('state', store.coltypes.JSONText(), nullable=True),
        sa.Column('answers', store.coltypes.JSONText(), nullable=False),
        sa.Column('pressed', store.coltypes.JSONText(), nullable=False),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('call_id'),
    )
    op.create_index(op.f('ix_hotline_calls_case_id'), 'hotline_calls', ['case_id'], unique=False)
    op.create_index(op.f('ix_hotline_calls_updated_at'), 'hotline_calls', ['updated_at'], unique=False)


def downgrade() -> None:
    op.drop_table('hotline_calls')  # its indexes with it (MySQL refuses to drop one a foreign key needs)
