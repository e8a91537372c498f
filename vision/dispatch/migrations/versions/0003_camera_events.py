"""自动核查: the camera's lifecycle events of a case (cleared / resumed), their snapshots,
and the camera's latest state on the case.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=36), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['client_id'], ['clients.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    op.create_index(op.f('ix_case_events_case_id'), 'case_events', ['case_id'], unique=False)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('camera_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('camera_state_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cleared_itself_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('camera_verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column('camera_suggests_verify', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_evidence_event_id'), ['event_id'], unique=False)
        batch_op.create_foreign_key(
            'fk_evidence_event_id_case_events', 'case_events', ['event_id'], ['id'], ondelete='CASCADE'
        )


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_constraint('fk_evidence_event_id_case_events', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_evidence_event_id'))
        batch_op.drop_column('event_id')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_column('camera_suggests_verify')
        batch_op.drop_column('camera_verified_at')
        batch_op.drop_column('cleared_itself_at')
        batch_op.drop_column('camera_state_at')
        batch_op.drop_column('camera_state')
    op.drop_index(op.f('ix_case_events_case_id'), table_name='case_events')
    op.drop_table('case_events')
