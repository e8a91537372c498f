"""The vehicle's plate on a case: text (indexed: merge and search), colour, confidence, rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plate_text', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('plate_colour', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('plate_confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('plate_rows', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_plate_text'), ['plate_text'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_plate_text'))
        batch_op.drop_column('plate_rows')
        batch_op.drop_column('plate_confidence')
        batch_op.drop_column('plate_colour')
        batch_op.drop_column('plate_text')
