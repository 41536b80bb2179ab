"""A model's config version: 1 at registration, one more at every update of its config.

``PUT /v1/models/{name}`` (and ``watchkeeper models update``) replace a model's config only when
the caller's expected version (``If-Match``) is still the stored one, so two administrators
cannot overwrite each other's change unseen. Models registered before this revision start at 1.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "models",
        sa.Column("config_version", sa.Integer, nullable=False, server_default=sa.text("1")),
    )


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("config_version")
