"""tuning (issue 12): tuning studies and adopted definition versions (Optuna keeps its own tables)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 23:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tuning_studies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("definition", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("cycle_id", sa.String(length=64), nullable=True),
        sa.Column("optuna_name", sa.String(length=80), nullable=False),
        sa.Column("budget", sa.JSON(), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("space", sa.JSON(), nullable=False),
        sa.Column("window", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("created_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_ts", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tuning_studies_definition", "tuning_studies", ["definition"])
    op.create_index("ix_tuning_studies_status", "tuning_studies", ["status"])
    op.create_index("ix_tuning_studies_cycle_id", "tuning_studies", ["cycle_id"])
    op.create_table(
        "definition_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("study_id", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("numbers", sa.JSON(), nullable=False),
        sa.Column("created_ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version"),
    )
    op.create_index("ix_definition_versions_name", "definition_versions", ["name"])


def downgrade() -> None:
    op.drop_index("ix_definition_versions_name", table_name="definition_versions")
    op.drop_table("definition_versions")
    op.drop_index("ix_tuning_studies_cycle_id", table_name="tuning_studies")
    op.drop_index("ix_tuning_studies_status", table_name="tuning_studies")
    op.drop_index("ix_tuning_studies_definition", table_name="tuning_studies")
    op.drop_table("tuning_studies")
