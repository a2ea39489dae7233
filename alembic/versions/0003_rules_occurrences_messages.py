"""Create reminder rules, their occurrences and the messages that batch them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminder_rule",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("workspace_id", sa.String(length=64), nullable=True),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("anchor_local", sa.String(length=32), nullable=True),
        sa.Column("remaining_count", sa.Integer(), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["recipient.id"], name=op.f("fk_reminder_rule_recipient_id_recipient")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_reminder_rule_task_id_task")
        ),
        sa.ForeignKeyConstraint(
            ["topic"], ["topic.key"], name=op.f("fk_reminder_rule_topic_topic")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_reminder_rule_workspace_id_workspace")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_rule")),
    )
    op.create_index(
        "ix_reminder_rule_due",
        "reminder_rule",
        ["next_fire_at"],
        unique=False,
        postgresql_where=sa.text("active AND next_fire_at IS NOT NULL"),
        sqlite_where=sa.text("active AND next_fire_at IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_reminder_rule_recipient_id"), "reminder_rule", ["recipient_id"], unique=False
    )
    op.create_index(op.f("ix_reminder_rule_task_id"), "reminder_rule", ["task_id"], unique=False)
    op.create_index(
        op.f("ix_reminder_rule_workspace_id"), "reminder_rule", ["workspace_id"], unique=False
    )

    op.create_table(
        "message",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("essential", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("ses_message_id", sa.String(length=128), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint(
            "recipient_id",
            "topic",
            "window_start",
            name=op.f("uq_message_recipient_id_topic_window_start"),
        ),
    )
    op.create_index(op.f("ix_message_ses_message_id"), "message", ["ses_message_id"], unique=False)
    op.create_index(
        "ix_message_status_next_attempt_at", "message", ["status", "next_attempt_at"], unique=False
    )

    op.create_table(
        "occurrence",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("workspace_id", sa.String(length=64), nullable=True),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("layer", sa.String(length=16), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ready_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("coalesced", sa.Integer(), nullable=False),
        sa.Column(
            "snoozed_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_occurrence_message_id_message")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["reminder_rule.id"],
            name=op.f("fk_occurrence_rule_id_reminder_rule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_occurrence")),
        sa.UniqueConstraint("rule_id", "fire_at", name=op.f("uq_occurrence_rule_id_fire_at")),
        sa.UniqueConstraint("snoozed_from", name=op.f("uq_occurrence_snoozed_from")),
    )
    op.create_index(op.f("ix_occurrence_message_id"), "occurrence", ["message_id"], unique=False)
    op.create_index(
        op.f("ix_occurrence_recipient_id"), "occurrence", ["recipient_id"], unique=False
    )
    op.create_index(
        "ix_occurrence_status_ready_at", "occurrence", ["status", "ready_at"], unique=False
    )
    op.create_index(op.f("ix_occurrence_task_id"), "occurrence", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_table("occurrence")
    op.drop_table("message")
    op.drop_table("reminder_rule")
