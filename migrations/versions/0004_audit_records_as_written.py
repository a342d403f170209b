"""audit records kept as written

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

The records an event lists are kept as the JSON text the service wrote (type json), not parsed
into jsonb: nothing queries inside them, and parsing them on every insert and writing them out
again whenever the chain is sealed or verified cost more than a read of a page of referrals.
The chain hashes the records' text as stored; the events written before keep, as their text,
the text jsonb wrote for them, which is what their seals were made from.
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_event ALTER COLUMN records TYPE json USING records::json")
    op.execute("ALTER TABLE audit_event ALTER COLUMN records SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_event ALTER COLUMN records TYPE jsonb USING records::jsonb")
    op.execute("ALTER TABLE audit_event ALTER COLUMN records SET STORAGE EXTERNAL")
