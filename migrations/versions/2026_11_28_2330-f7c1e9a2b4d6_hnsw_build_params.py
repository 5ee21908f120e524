"""HNSW indexes rebuilt with m 32 and ef_construction 200 (pgvector's defaults were 16 and 64).

On the offline embedder's hashed vectors the defaults found about 0.82 of the true ten nearest
chunks at ef_search 400; these parameters 0.93 to 0.95 (bench/knowledge_search.py).
Rebuilding reads every chunk of the dimension once.

Revision ID: f7c1e9a2b4d6
Revises: e4a8b3f7d025
Create Date: 2026-11-28 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f7c1e9a2b4d6"
down_revision: str | None = "e4a8b3f7d025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMENSIONS = (256, 384, 512, 768, 1024, 1536)


def _rebuild(options: dict[str, int] | None) -> None:
    for dimensions in DIMENSIONS:
        name = f"ix_knowledge_chunks_hnsw_{dimensions}"
        op.drop_index(name, table_name="knowledge_chunks")
        op.create_index(
            name,
            "knowledge_chunks",
            [
                sa.literal_column(f"CAST(embedding AS VECTOR({dimensions}))").label(
                    f"embedding_{dimensions}"
                )
            ],
            unique=False,
            postgresql_using="hnsw",
            postgresql_ops={f"embedding_{dimensions}": "vector_cosine_ops"},
            postgresql_where=sa.text(f"dimensions = {dimensions}"),
            postgresql_with=options or {},
        )


def upgrade() -> None:
    _rebuild({"m": 32, "ef_construction": 200})


def downgrade() -> None:
    _rebuild(None)
