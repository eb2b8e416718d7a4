"""Intermediary-service ratings and complaints (Hainan 中介服务 art. 21–25).

- `intermediary_ratings`: the project owner's (项目业主) one rating of a completed intermediary-service project
  (一事一评, art. 21), a grade on each of five dimensions (quality, timeliness, attitude, fees, conduct) and
  the sum of their scores. A table of its own, not rows of `evaluations`: the project is no case of ours,
  and none of it may enter the case figures, the work orders or the upward reports that read evaluations.
  `project_no` is unique, so a second rating of a project is refused by the store itself, even when two
  arrive at once. The rater's phone is sealed, hashed and masked as the contacts' are.
- `intermediary_complaints`: a complaint about an intermediary's quality, time limit or contract
  performance (art. 22, 23), and the centre's answer, due within 5 working days of its receipt (art. 25).
  The index on (answered_at, overdue, received_at) is the tick's: the unanswered complaints not yet
  marked, oldest first.

New tables only: nothing already stored changes, no day is marked dirty, and the triggers of 0006 are
untouched. The downgrade drops both tables (and what they hold).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'intermediary_ratings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_no', sa.String(length=100), nullable=False),
        sa.Column('intermediary_code', sa.String(length=100), nullable=False),
        sa.Column('intermediary_name', sa.String(length=300), nullable=False),
        sa.Column('agency_code', sa.String(length=100), nullable=True),
        sa.Column('agency_name', sa.String(length=300), nullable=True),
        sa.Column('service', sa.String(length=300), nullable=True),
        sa.Column('fulfilled_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('quality', sa.String(length=32), nullable=False),
        sa.Column('timeliness', sa.String(length=32), nullable=False),
        sa.Column('attitude', sa.String(length=32), nullable=False),
        sa.Column('fees', sa.String(length=32), nullable=False),
        sa.Column('conduct', sa.String(length=32), nullable=False),
        sa.Column('score_sum', sa.Integer(), nullable=False),
        sa.Column('text', sa.String().with_variant(sa.Text(), 'mysql'), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('rater_phone_hash', sa.String(length=64), nullable=True),
        sa.Column('rater_phone_sealed', sa.String().with_variant(sa.Text(), 'mysql'), nullable=True),
        sa.Column('rater_phone_masked', sa.String(length=32), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_no'),
    )
    op.create_index(op.f('ix_intermediary_ratings_intermediary_code'), 'intermediary_ratings',
                    ['intermediary_code'], unique=False)
    op.create_index(op.f('ix_intermediary_ratings_agency_code'), 'intermediary_ratings', ['agency_code'],
                    unique=False)
    op.create_index(op.f('ix_intermediary_ratings_fulfilled_at'), 'intermediary_ratings', ['fulfilled_at'],
                    unique=False)
    op.create_index(op.f('ix_intermediary_ratings_rater_phone_hash'), 'intermediary_ratings',
                    ['rater_phone_hash'], unique=False)
    op.create_table(
        'intermediary_complaints',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rating_id', sa.Integer(), nullable=True),
        sa.Column('project_no', sa.String(length=100), nullable=False),
        sa.Column('about', sa.String(length=16), nullable=False),
        sa.Column('text', sa.String().with_variant(sa.Text(), 'mysql'), nullable=False),
        sa.Column('fulfilled_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('received_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('due_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.Column('answered_at', store.coltypes.UTCDateTime(), nullable=True),
        sa.Column('answer', sa.String().with_variant(sa.Text(), 'mysql'), nullable=True),
        sa.Column('answered_by', sa.String(length=100), nullable=True),
        sa.Column('overdue', sa.Boolean(), nullable=False),
        sa.Column('created_at', store.coltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['rating_id'], ['intermediary_ratings.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_intermediary_complaints_rating_id'), 'intermediary_complaints', ['rating_id'],
                    unique=False)
    op.create_index(op.f('ix_intermediary_complaints_project_no'), 'intermediary_complaints', ['project_no'],
                    unique=False)
    op.create_index(op.f('ix_intermediary_complaints_due_at'), 'intermediary_complaints', ['due_at'],
                    unique=False)
    op.create_index('ix_intermediary_complaints_open', 'intermediary_complaints',
                    ['answered_at', 'overdue', 'received_at'], unique=False)


def downgrade() -> None:
    # The tables' indexes go with them (MySQL refuses to drop one a foreign key needs).
    op.drop_table('intermediary_complaints')
    op.drop_table('intermediary_ratings')
