"""The MySQL family only (issue 26): the free-text columns the first migrations made as VARCHAR without a length,
which MySQL makes VARCHAR(255) (a rating's words, a note, an appeal's reason, a message's body cut or refused
past 255 characters; a frozen snapshot's whole JSON), become TEXT, and the snapshot LONGTEXT. On SQLite and
PostgreSQL nothing changes (their VARCHAR has no limit). JSON columns are LONGTEXT there already for databases
made from 0016 on (store/coltypes.py JSONText).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable)
TEXTS = (
    ('contacts', 'address_sealed', False), ('settings', 'value', False), ('cases', 'applicant_name_sealed', True),
    ('evaluations', 'text', True), ('outbox', 'body', False), ('outbox', 'error', True),
    ('users', 'password_hash', False), ('work_orders', 'appeal_reason', True), ('work_order_events', 'note', True),
    ('upstream_reports', 'last_error', True),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for table, column, nullable in TEXTS:
        op.alter_column(table, column, type_=sa.Text(), existing_nullable=nullable, nullable=nullable)
    op.alter_column('stats_snapshots', 'content', type_=mysql.LONGTEXT(), existing_nullable=False, nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for table, column, nullable in TEXTS:
        op.alter_column(table, column, type_=sa.String(255), existing_nullable=nullable, nullable=nullable)
    op.alter_column('stats_snapshots', 'content', type_=sa.String(255), existing_nullable=False, nullable=False)
