"""reliability (issue 11): cycle fencing token and heartbeat; metadata.json is no longer a verified artifact

Revision ID: 0011
Revises: 0001
Create Date: 2026-12-01 20:09:20.926126
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_models = sa.table("models", sa.column("id", sa.Integer()), sa.column("artifact_sha256", sa.JSON()))


def upgrade() -> None:
    fence = op.create_table(
        "cycle_fence",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(fence, [{"name": "cycle", "token": 0}])
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fence", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_ts", sa.DateTime(timezone=True), nullable=True))
    # metadata.json is a copy of the row from now on, never verified: drop its recorded hash
    conn = op.get_bind()
    for row_id, hashes in conn.execute(sa.select(_models.c.id, _models.c.artifact_sha256)).all():
        if isinstance(hashes, dict) and "metadata.json" in hashes:
            kept = {k: v for k, v in hashes.items() if k != "metadata.json"}
            conn.execute(_models.update().where(_models.c.id == row_id).values(artifact_sha256=kept))


def downgrade() -> None:
    # The hashes of metadata.json are not put back (the files are not read here): an older release would
    # refuse those models as holding a file "not saved with the model" until they are saved again.
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_ts")
        batch_op.drop_column("fence")
    op.drop_table("cycle_fence")
