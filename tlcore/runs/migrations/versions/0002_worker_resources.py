"""Workers on several hosts: what a run needs (gpus, memory), what its worker offers, its data sets by content.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("need_gpus", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("need_memory_gb", sa.Float(), nullable=True))
        batch.add_column(sa.Column("worker_gpus", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("worker_memory_gb", sa.Float(), nullable=True))
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name in ("inputs", "worker_memory_gb", "worker_gpus", "need_memory_gb", "need_gpus"):
            batch.drop_column(name)
