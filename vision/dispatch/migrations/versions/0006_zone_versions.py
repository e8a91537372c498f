"""Zones published to the boxes: each camera's zone versions drawn in the zone editor (who, when,
which zones), and on each camera the version its box runs and the one it refused, and why.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zone_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("zones", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "camera_id", "version", name="uq_zone_versions_site_camera_version"),
    )
    with op.batch_alter_table("edge_cameras") as batch:
        batch.add_column(sa.Column("zone_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("zone_refused_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("zone_refused", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("edge_cameras") as batch:
        batch.drop_column("zone_refused")
        batch.drop_column("zone_refused_version")
        batch.drop_column("zone_version")
    op.drop_table("zone_versions")
