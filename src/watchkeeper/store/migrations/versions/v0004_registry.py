"""The model registry: versions with their artifact's sha256, aliases, and every alias move.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "registry_versions",
        sa.Column("model", sa.String, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("flavor", sa.String, nullable=False),
        sa.Column("artifact_sha256", sa.String, nullable=False),
        sa.Column("artifact_bytes", sa.BigInteger, nullable=False),
        sa.Column("trusted", sa.Boolean, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("signature", sa.JSON, nullable=False),
        sa.Column("reference_profile", sa.LargeBinary, nullable=True),
        sa.Column("code_revision", sa.String, nullable=True),
        sa.Column("registered_by", sa.String, nullable=False),
        sa.Column("registered_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name="pk_registry_versions"),
    )
    op.create_table(
        "registry_aliases",
        sa.Column("model", sa.String, nullable=False),
        sa.Column("alias", sa.String, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("model", "alias", name="pk_registry_aliases"),
    )
    op.create_table(
        "registry_alias_moves",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("alias", sa.String, nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("moved_by", sa.String, nullable=False),
        sa.Column("moved_at", sa.Double, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_alias_moves"),
    )
    op.create_index(
        "ix_registry_alias_moves_model_alias_moved_at",
        "registry_alias_moves",
        ["model", "alias", "moved_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_registry_alias_moves_model_alias_moved_at", table_name="registry_alias_moves")
    op.drop_table("registry_alias_moves")
    op.drop_table("registry_aliases")
    op.drop_table("registry_versions")
