"""HNSW indexes rebuilt with m 16 and ef_construction 400 (were 32 and 200).

A wider search while building gives a better graph than more links per chunk: at 100,000
chunks of the offline embedder, these parameters find more of the true ten nearest at the same
ef_search, and a search follows half as many links per step (bench/knowledge_search.py).
Inserting a chunk costs about the same. Rebuilding reads every chunk of the dimension once.

Revision ID: b8d2f4a6c0e1
Revises: ee04616ebf6e
Create Date: 2026-11-29 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b8d2f4a6c0e1"
down_revision: str | None = "ee04616ebf6e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIMENSIONS = (256, 384, 512, 768, 1024, 1536)


def _rebuild(m: int, ef_construction: int) -> None:
    for dimensions in DIMENSIONS:
        name = f"ix_knowledge_chunks_hnsw_{dimensions}"
        op.execute(f"ALTER INDEX {name} SET (m = {m}, ef_construction = {ef_construction})")
        op.execute(f"REINDEX INDEX {name}")


def upgrade() -> None:
    _rebuild(16, 400)


def downgrade() -> None:
    _rebuild(32, 200)
