"""audit trail

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Audit events and their hash chain, append-only twice over: a trigger refuses UPDATE, DELETE
and TRUNCATE, and the service role `registry_service` may only INSERT and SELECT them.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


AUDIT_TABLES = ("audit_event", "audit_seal")
RECORD_TABLES = ("agency", "subject", "referral", "follow_up_note", "threat_assessment")

APPEND_ONLY = """
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$
"""

# Cluster-wide, so created only once per server; each database grants it what it needs.
SERVICE_ROLE = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'registry_service') THEN
    CREATE ROLE registry_service NOLOGIN;
  END IF;
END $$
"""


def upgrade() -> None:
    op.add_column("subject", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table('audit_event',
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('actor_id', sa.Text(), nullable=False),
    sa.Column('actor_name', sa.Text(), nullable=False),
    sa.Column('actor_agency', sa.Text(), nullable=True),
    sa.Column('actor_roles', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=True),
    sa.Column('justification', sa.Text(), nullable=True),
    sa.Column('operation', sa.Text(), nullable=True),
    sa.Column('request_id', sa.Text(), nullable=True),
    sa.Column('break_glass', sa.Boolean(), nullable=False),
    sa.Column('subject_ids', postgresql.ARRAY(sa.UUID()), nullable=False),
    sa.Column('records', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_event')),
    sa.UniqueConstraint('id', name=op.f('uq_audit_event_id'))
    )
    op.create_index(op.f('ix_audit_event_actor_id_occurred_at'), 'audit_event', ['actor_id', 'occurred_at'], unique=False)
    op.create_index('ix_audit_event_break_glass', 'audit_event', ['seq'], unique=False, postgresql_where='break_glass')
    op.create_index(op.f('ix_audit_event_occurred_at'), 'audit_event', ['occurred_at'], unique=False)
    op.create_index('ix_audit_event_subject_ids', 'audit_event', ['subject_ids'], unique=False, postgresql_using='gin')
    op.create_table('audit_seal',
    sa.Column('position', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('event_seq', sa.BigInteger(), nullable=False),
    sa.Column('event_digest', sa.LargeBinary(), nullable=False),
    sa.Column('prev_hash', sa.LargeBinary(), nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_audit_seal')),
    sa.UniqueConstraint('event_seq', name=op.f('uq_audit_seal_event_seq'))
    )
    op.execute(APPEND_ONLY)
    for table in AUDIT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()"
        )
    op.execute(SERVICE_ROLE)
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(RECORD_TABLES)} TO registry_service")
    op.execute("GRANT SELECT, INSERT ON record_version, audit_event, audit_seal TO registry_service")
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO registry_service")
    op.execute("GRANT SELECT ON alembic_version TO registry_service")


def downgrade() -> None:
    op.drop_column("subject", "erased_at")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM registry_service")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM registry_service")
    op.drop_table('audit_seal')
    op.execute("DROP FUNCTION refuse_audit_change() CASCADE")
    op.drop_index('ix_audit_event_subject_ids', table_name='audit_event', postgresql_using='gin')
    op.drop_index(op.f('ix_audit_event_occurred_at'), table_name='audit_event')
    op.drop_index('ix_audit_event_break_glass', table_name='audit_event', postgresql_where='break_glass')
    op.drop_index(op.f('ix_audit_event_actor_id_occurred_at'), table_name='audit_event')
    op.drop_table('audit_event')
