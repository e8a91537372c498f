"""Department and inspector accounts (an operator's department), 挂账 (a parked case's state
before, time, reason, expected date, deadline hours left) and 督办 (urge count, latest time, note).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.add_column(sa.Column("department", sa.String(length=32), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked_from", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("parked_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("park_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("parked_hours_left", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("urge_count", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("urged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("urge_note", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("urge_note")
        batch_op.drop_column("urged_at")
        batch_op.drop_column("urge_count")
        batch_op.drop_column("parked_hours_left")
        batch_op.drop_column("park_reason")
        batch_op.drop_column("parked_until")
        batch_op.drop_column("parked_at")
        batch_op.drop_column("parked_from")
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_column("department")
