"""accountability at volume: agency kinds, audit indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Each filter of the DPO's audit search gets an index in the order pages are read (by seq, newest
first), and the review of a break-glass event is found by an index on the event it names: at a
million events every page reads only its own rows. The actor's index moves from time order to
sequence order (the order of the pages). Only indexes are added: events are not rewritten, their
seals stay valid. Building them locks the table for writes for a while on a large trail: run the
migration when the service is stopped.

Agencies get a kind (youth, threat_analysis, partner): auth/policy.toml binds each role to the
kinds of agency that may hold it. Agencies registered before keep no kind until an operator
sets it, and meanwhile hold only the roles open to any agency.
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


FILTERS = ('actor_agency', 'purpose', 'operation', 'action')


def upgrade() -> None:
    op.add_column('agency', sa.Column('kind', sa.Text(), nullable=True))
    op.drop_index('ix_audit_event_actor_id_occurred_at', table_name='audit_event')
    op.create_index('ix_audit_event_actor_id_seq', 'audit_event', ['actor_id', 'seq'])
    for column in FILTERS:
        op.create_index(f'ix_audit_event_{column}_seq', 'audit_event', [column, 'seq'])
    op.create_index(
        'ix_audit_event_reviewed_event', 'audit_event', [sa.text("(detail ->> 'reviewedEvent')")],
        postgresql_where=sa.text("action = 'break_glass.reviewed'"),
    )


def downgrade() -> None:
    op.drop_index('ix_audit_event_reviewed_event', table_name='audit_event')
    for column in FILTERS:
        op.drop_index(f'ix_audit_event_{column}_seq', table_name='audit_event')
    op.drop_index('ix_audit_event_actor_id_seq', table_name='audit_event')
    op.create_index('ix_audit_event_actor_id_occurred_at', 'audit_event', ['actor_id', 'occurred_at'])
    op.drop_column('agency', 'kind')
