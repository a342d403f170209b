"""shared lookup budget

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

The hit/no-hit lookups of the last minute, per principal, kept in the database so that every
worker and every instance counts against one budget (registry.db.budget). The service role
inserts the attempts and deletes those that left the window.
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lookup_attempt',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('principal', sa.Text(), nullable=False),
    sa.Column('attempted_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lookup_attempt'))
    )
    op.create_index(op.f('ix_lookup_attempt_principal_attempted_at'), 'lookup_attempt', ['principal', 'attempted_at'], unique=False)
    op.execute("GRANT SELECT, INSERT, DELETE ON lookup_attempt TO registry_service")
    op.execute("GRANT USAGE, SELECT ON SEQUENCE lookup_attempt_id_seq TO registry_service")


def downgrade() -> None:
    op.drop_index(op.f('ix_lookup_attempt_principal_attempted_at'), table_name='lookup_attempt')
    op.drop_table('lookup_attempt')
