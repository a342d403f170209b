"""accountability at volume: agency kinds, audit indexes

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-29

Agencies get a kind (youth, threat_analysis, partner): auth/policy.toml binds each role to the
kinds of agency that may hold it. Agencies registered before keep no kind until an operator
sets it, and meanwhile hold only the roles open to any agency.
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('agency', sa.Column('kind', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('agency', 'kind')
