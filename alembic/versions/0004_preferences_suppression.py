"""Create preferences, suppressions and transient-bounce evidence.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipient.id"],
            name=op.f("fk_preference_recipient_id_recipient"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preference")),
        sa.UniqueConstraint(
            "recipient_id",
            "scope",
            "scope_id",
            name=op.f("uq_preference_recipient_id_scope_scope_id"),
        ),
    )

    op.create_table(
        "suppression",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_event", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression")),
        sa.UniqueConstraint(
            "email_hash", "reason", "scope", name=op.f("uq_suppression_email_hash_reason_scope")
        ),
    )
    op.create_index(op.f("ix_suppression_email_hash"), "suppression", ["email_hash"], unique=False)

    op.create_table(
        "transient_bounce",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transient_bounce")),
        sa.UniqueConstraint("event_id", name=op.f("uq_transient_bounce_event_id")),
    )
    op.create_index(
        op.f("ix_transient_bounce_email_hash"), "transient_bounce", ["email_hash"], unique=False
    )


def downgrade() -> None:
    op.drop_table("transient_bounce")
    op.drop_table("suppression")
    op.drop_table("preference")
