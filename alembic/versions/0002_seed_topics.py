"""Seed the two reminder topics the product sends.

Revision ID: 0002
Revises: 0001

Both send from and reply to support@timeplanpush.com (DESIGN §7). ``max_lateness`` is
the catch-up policy of DESIGN §5: a task reminder more than an hour late is no longer
useful; a digest stays useful for half a day.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

topic = sa.table(
    "topic",
    sa.column("key", sa.String),
    sa.column("description", sa.String),
    sa.column("from_addr", sa.String),
    sa.column("reply_to", sa.String),
    sa.column("essential", sa.Boolean),
    sa.column("default_enabled", sa.Boolean),
    sa.column("max_lateness_seconds", sa.Integer),
)

SUPPORT = "Time Plan <support@timeplanpush.com>"


def upgrade() -> None:
    op.bulk_insert(
        topic,
        [
            {
                "key": "task-reminder",
                "description": "Reminders about tasks you set them on",
                "from_addr": SUPPORT,
                "reply_to": "support@timeplanpush.com",
                "essential": False,
                "default_enabled": True,
                "max_lateness_seconds": 3600,
            },
            {
                "key": "workspace-digest",
                "description": "Digests of a workspace's due and overdue tasks",
                "from_addr": SUPPORT,
                "reply_to": "support@timeplanpush.com",
                "essential": False,
                "default_enabled": True,
                "max_lateness_seconds": 43200,
            },
        ],
    )


def downgrade() -> None:
    op.execute(topic.delete().where(topic.c.key.in_(["task-reminder", "workspace-digest"])))
