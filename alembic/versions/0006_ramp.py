"""Create ramp-up state, daily send figures and the ramp audit.

Revision ID: 0006
Revises: 0005
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
        "send_day",
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("bounced", sa.Integer(), nullable=False),
        sa.Column("complained", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("delayed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "day", name=op.f("pk_send_day")),
    )

    op.create_table(
        "ramp",
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("second", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("second_count", sa.Integer(), nullable=False),
        sa.Column("evaluated_day", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_ramp")),
    )

    op.create_table(
        "ramp_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("old", sa.JSON(), nullable=False),
        sa.Column("new", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ramp_change")),
    )
    op.create_index(op.f("ix_ramp_change_stream"), "ramp_change", ["stream"], unique=False)


def downgrade() -> None:
    op.drop_table("ramp_change")
    op.drop_table("ramp")
    op.drop_table("send_day")
