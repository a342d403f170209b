"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence('subject_reference_seq')))
    op.create_table('agency',
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_agency'))
    )
    op.create_table('record_version',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('record_type', sa.Text(), nullable=False),
    sa.Column('record_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('changed_fields', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('changed_by', sa.Text(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_version'))
    )
    op.create_index(op.f('ix_record_version_record_type_record_id_version'), 'record_version', ['record_type', 'record_id', 'version'], unique=True)
    op.create_table('subject',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('given_name', sa.Text(), nullable=True),
    sa.Column('family_name', sa.Text(), nullable=True),
    sa.Column('date_of_birth', sa.Date(), nullable=True),
    sa.Column('national_number', sa.Text(), nullable=True),
    sa.Column('institution', sa.Text(), nullable=True),
    sa.Column('legal_status', sa.Text(), nullable=False),
    sa.Column('agency_code', sa.Text(), nullable=False),
    sa.Column('review_due_at', sa.Date(), nullable=True),
    sa.Column('retain_until', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("legal_status IN ('CONCERN','SUSPECTED','CONVICTED')", name=op.f('ck_subject_legal_status')),
    sa.ForeignKeyConstraint(['agency_code'], ['agency.code'], name=op.f('fk_subject_agency_code_agency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject')),
    sa.UniqueConstraint('national_number', name=op.f('uq_subject_national_number')),
    sa.UniqueConstraint('reference', name=op.f('uq_subject_reference'))
    )
    op.create_index(op.f('ix_subject_agency_code'), 'subject', ['agency_code'], unique=False)
    op.create_index(op.f('ix_subject_institution'), 'subject', ['institution'], unique=False)
    op.create_table('referral',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('subject_id', sa.UUID(), nullable=False),
    sa.Column('agency_code', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=True),
    sa.Column('legal_basis', sa.Text(), nullable=True),
    sa.Column('referred_by', sa.Text(), nullable=False),
    sa.Column('referred_by_id', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("reason IN ('TERRORISM_SUSPECTED','TERRORISM_CONVICTED','RADICALISATION_CONCERN')", name=op.f('ck_referral_reason')),
    sa.CheckConstraint("status IN ('DRAFT','SUBMITTED','ACKNOWLEDGED','CLOSED')", name=op.f('ck_referral_status')),
    sa.ForeignKeyConstraint(['agency_code'], ['agency.code'], name=op.f('fk_referral_agency_code_agency')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_referral_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referral'))
    )
    op.create_index(op.f('ix_referral_agency_code'), 'referral', ['agency_code'], unique=False)
    op.create_index(op.f('ix_referral_created_at_id'), 'referral', ['created_at', 'id'], unique=False)
    op.create_index(op.f('ix_referral_subject_id_created_at'), 'referral', ['subject_id', 'created_at'], unique=False)
    op.create_table('follow_up_note',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('subject_id', sa.UUID(), nullable=False),
    sa.Column('referral_id', sa.UUID(), nullable=True),
    sa.Column('corrects_id', sa.UUID(), nullable=True),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Text(), nullable=False),
    sa.Column('agency_code', sa.Text(), nullable=False),
    sa.Column('visibility', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("visibility IN ('AGENCY_INTERNAL','SHARED')", name=op.f('ck_follow_up_note_visibility')),
    sa.ForeignKeyConstraint(['agency_code'], ['agency.code'], name=op.f('fk_follow_up_note_agency_code_agency')),
    sa.ForeignKeyConstraint(['corrects_id'], ['follow_up_note.id'], name=op.f('fk_follow_up_note_corrects_id_follow_up_note')),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_follow_up_note_referral_id_referral')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_follow_up_note_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up_note')),
    sa.UniqueConstraint('corrects_id', name=op.f('uq_follow_up_note_corrects_id'))
    )
    op.create_index(op.f('ix_follow_up_note_referral_id'), 'follow_up_note', ['referral_id'], unique=False)
    op.create_index(op.f('ix_follow_up_note_subject_id_created_at'), 'follow_up_note', ['subject_id', 'created_at'], unique=False)
    op.create_table('threat_assessment',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('subject_id', sa.UUID(), nullable=False),
    sa.Column('referral_id', sa.UUID(), nullable=True),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('rationale', sa.Text(), nullable=True),
    sa.Column('sources', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('author', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Text(), nullable=False),
    sa.Column('validated_by', sa.Text(), nullable=True),
    sa.Column('validated_by_id', sa.Text(), nullable=True),
    sa.Column('validated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('DRAFT','VALIDATED','SUPERSEDED')", name=op.f('ck_threat_assessment_status')),
    sa.CheckConstraint('level BETWEEN 1 AND 4', name=op.f('ck_threat_assessment_level')),
    sa.ForeignKeyConstraint(['referral_id'], ['referral.id'], name=op.f('fk_threat_assessment_referral_id_referral')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_threat_assessment_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_threat_assessment'))
    )
    op.create_index(op.f('ix_threat_assessment_referral_id'), 'threat_assessment', ['referral_id'], unique=False)
    op.create_index(op.f('ix_threat_assessment_subject_id_created_at'), 'threat_assessment', ['subject_id', 'created_at'], unique=False)
    op.create_index('uq_threat_assessment_validated_subject', 'threat_assessment', ['subject_id'], unique=True, postgresql_where="status = 'VALIDATED'")


def downgrade() -> None:
    op.drop_index('uq_threat_assessment_validated_subject', table_name='threat_assessment', postgresql_where="status = 'VALIDATED'")
    op.drop_index(op.f('ix_threat_assessment_subject_id_created_at'), table_name='threat_assessment')
    op.drop_index(op.f('ix_threat_assessment_referral_id'), table_name='threat_assessment')
    op.drop_table('threat_assessment')
    op.drop_index(op.f('ix_follow_up_note_subject_id_created_at'), table_name='follow_up_note')
    op.drop_index(op.f('ix_follow_up_note_referral_id'), table_name='follow_up_note')
    op.drop_table('follow_up_note')
    op.drop_index(op.f('ix_referral_subject_id_created_at'), table_name='referral')
    op.drop_index(op.f('ix_referral_created_at_id'), table_name='referral')
    op.drop_index(op.f('ix_referral_agency_code'), table_name='referral')
    op.drop_table('referral')
    op.drop_index(op.f('ix_subject_institution'), table_name='subject')
    op.drop_index(op.f('ix_subject_agency_code'), table_name='subject')
    op.drop_table('subject')
    op.drop_index(op.f('ix_record_version_record_type_record_id_version'), table_name='record_version')
    op.drop_table('record_version')
    op.drop_table('agency')
    op.execute(sa.schema.DropSequence(sa.Sequence('subject_reference_seq')))
