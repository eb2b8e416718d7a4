"""Supervision (issue 25): the signals the scan finds, the random supervisory draws and their calls, and
where a page's rating came from (store/models.py Signal, SupervisionDraw, SupervisionCall; Evaluation
client_hash, device_hash).

New tables, two nullable columns, and indexes on `evaluations.created_at` (the scan reads ranges of it) and
`device_hash` (a device's ratings):
nothing already stored changes, no day is marked dirty. The downgrade drops them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('evaluations', sa.Column('client_hash', sa.String(length=64), nullable=True))
    op.add_column('evaluations', sa.Column('device_hash', sa.String(length=64), nullable=True))
    op.create_index(op.f('ix_evaluations_created_at'), 'evaluations', ['created_at'], unique=False)
    op.create_index(op.f('ix_evaluations_device_hash'), 'evaluations', ['device_hash'], unique=False)
    op.create_table(
        'signals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=160), nullable=False),
        sa.Column('agency_code', sa.String(length=100), nullable=False),
        sa.Column('staff_id', sa.String(length=100), nullable=True),
        sa.Column('cases', store.coltypes.JSONText(), nullable=False),
        sa.Column('evaluation_ids', store.coltypes.JSONText(), nullable=False),
        sa.Column('evidence', store.coltypes.JSONText(), nullable=False),
        sa.Column('detected_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('updated_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('note', sa.String().with_variant(sa.Text(), 'mysql'), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_signals_kind_subject', 'signals', ['kind', 'subject'], unique=False)
    op.create_index(op.f('ix_signals_agency_code'), 'signals', ['agency_code'], unique=False)
    op.create_index(op.f('ix_signals_detected_at'), 'signals', ['detected_at'], unique=False)
    op.create_index(op.f('ix_signals_status'), 'signals', ['status'], unique=False)
    op.create_table(
        'supervision_draws',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=16), nullable=False),
        sa.Column('agency_code', sa.String(length=100), nullable=False),
        sa.Column('seed', sa.String(length=64), nullable=False),
        sa.Column('rule', sa.String(length=300), nullable=False),
        sa.Column('population', sa.Integer(), nullable=False),
        sa.Column('population_ids', store.coltypes.JSONText(), nullable=False),
        sa.Column('drawn_ids', store.coltypes.JSONText(), nullable=False),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('period', 'agency_code', name='uq_supervision_draws_period_agency'),
    )
    op.create_table(
        'supervision_calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('draw_id', sa.Integer(), nullable=True),
        sa.Column('signal_id', sa.Integer(), nullable=True),
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('agency_code', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('answer', sa.String(length=16), nullable=True),
        sa.Column('note', sa.String().with_variant(sa.Text(), 'mysql'), nullable=True),
        sa.Column('answered_by', sa.String(length=100), nullable=True),
        sa.Column('answered_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['draw_id'], ['supervision_draws.id']),
        sa.ForeignKeyConstraint(['signal_id'], ['signals.id']),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluations.id']),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('evaluation_id'),
    )
    op.create_index(op.f('ix_supervision_calls_draw_id'), 'supervision_calls', ['draw_id'], unique=False)
    op.create_index(op.f('ix_supervision_calls_signal_id'), 'supervision_calls', ['signal_id'], unique=False)
    op.create_index(op.f('ix_supervision_calls_agency_code'), 'supervision_calls', ['agency_code'], unique=False)
    op.create_index(op.f('ix_supervision_calls_status'), 'supervision_calls', ['status'], unique=False)


def downgrade() -> None:
    # A table's indexes go with it (on MySQL an index a foreign key needs cannot be dropped before its table).
    op.drop_table('supervision_calls')
    op.drop_table('supervision_draws')
    op.drop_table('signals')
    op.drop_index(op.f('ix_evaluations_device_hash'), table_name='evaluations')
    op.drop_index(op.f('ix_evaluations_created_at'), table_name='evaluations')
    op.drop_column('evaluations', 'device_hash')
    op.drop_column('evaluations', 'client_hash')
