"""What a mini-program user answered to `wx.requestSubscribeMessage` (issue 27; store/models.py Contact).

`mp_grants`: the one-time subscriptions the person granted and the service has not used yet; `mp_refused_at`: when
they last refused one. A reminder goes by mini-program while a grant is left or nothing was refused, and straight by
SMS once the person refused and no grant is left (instead of a send WeChat refuses with 43101). Two columns added
to `contacts`, null for every existing row: nothing stored changes meaning. The downgrade drops them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.coltypes

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('contacts', sa.Column('mp_grants', sa.Integer(), nullable=True))
    op.add_column('contacts', sa.Column('mp_refused_at', store.coltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column('contacts', 'mp_refused_at')
    op.drop_column('contacts', 'mp_grants')
