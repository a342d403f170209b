"""event outbox

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

The events subscribers are told of, written by the mutation's own transaction. The id is the
cursor: events are numbered under a transaction-scoped advisory lock, so ids are committed in
increasing order and a reader that has seen id N has seen every committed event before it.
Rows carry ids only (record and subject), never personal data. The service role inserts and
reads them, and deletes the ones older than the configured period (cursors that old are refused).
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_outbox',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('type', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('record_type', sa.Text(), nullable=False),
    sa.Column('record_id', sa.UUID(), nullable=False),
    sa.Column('subject_id', sa.UUID(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_outbox'))
    )
    op.create_index(op.f('ix_event_outbox_occurred_at'), 'event_outbox', ['occurred_at'], unique=False)
    op.execute("GRANT SELECT, INSERT, DELETE ON event_outbox TO registry_service")
    op.execute("GRANT USAGE, SELECT ON SEQUENCE event_outbox_id_seq TO registry_service")


def downgrade() -> None:
    op.execute("REVOKE ALL ON event_outbox FROM registry_service")
    op.drop_index(op.f('ix_event_outbox_occurred_at'), table_name='event_outbox')
    op.drop_table('event_outbox')
