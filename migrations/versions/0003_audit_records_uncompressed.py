"""audit records stored uncompressed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

An event of a read lists every record it disclosed (tens of kilobytes for a page of referrals
with their notes). Compressing that list on every insert, and decompressing it again when the
sealer hashes the event, cost more than the read itself; it is stored out of line, uncompressed.
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_event ALTER COLUMN records SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_event ALTER COLUMN records SET STORAGE EXTENDED")
