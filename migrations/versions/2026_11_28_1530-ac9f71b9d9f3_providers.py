"""providers: connections and model prices, with the seeded catalog

Revision ID: ac9f71b9d9f3
Revises: f71b08880fd3
Create Date: 2026-11-28 15:30:16.398808
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "ac9f71b9d9f3"
down_revision: str | None = "f71b08880fd3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Public list prices in USD per million input / output tokens, as of 2026, frozen here so the
# migration stays reproducible. They are only a starting point: tenants override them through
# PUT /v1/models/{model}, and a later migration may update the catalog.
CATALOG = [
    ("gpt-4o", "2.50", "10.00"),
    ("gpt-4o-mini", "0.15", "0.60"),
    ("gpt-4.1", "2.00", "8.00"),
    ("gpt-4.1-mini", "0.40", "1.60"),
    ("gpt-4.1-nano", "0.10", "0.40"),
    ("o3", "2.00", "8.00"),
    ("o3-mini", "1.10", "4.40"),
    ("o4-mini", "1.10", "4.40"),
    ("claude-3-5-sonnet", "3.00", "15.00"),
    ("claude-3-5-haiku", "0.80", "4.00"),
    ("claude-3-7-sonnet", "3.00", "15.00"),
    ("llama-3.1-70b", "0.88", "0.88"),  # Together AI's Meta-Llama-3.1-70B-Instruct-Turbo
    ("llama-3.1-8b", "0.18", "0.18"),  # Together AI's Meta-Llama-3.1-8B-Instruct-Turbo
    ("text-embedding-3-small", "0.02", "0.00"),
    ("text-embedding-3-large", "0.13", "0.00"),
]


def upgrade() -> None:
    model_prices = op.create_table(
        "model_prices",
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_per_million", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("output_per_million", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_model_prices_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        sa.UniqueConstraint(
            "tenant_id",
            "model",
            name="uq_model_prices_tenant_model",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_table(
        "provider_connections",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=True),
        sa.Column("api_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("api_key_hint", sa.String(length=4), nullable=True),
        sa.Column("headers_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("header_names", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("api_version", sa.String(length=50), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('openai', 'azure_openai', 'openai_compatible', 'offline')",
            name=op.f("ck_provider_connections_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_provider_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_connections")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_provider_connections_tenant_name"),
    )
    op.create_index(
        "uq_provider_connections_default",
        "provider_connections",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )
    op.execute(
        model_prices.insert().values(
            [
                {
                    "id": sa.func.gen_random_uuid(),
                    "tenant_id": None,
                    "model": model,
                    "input_per_million": input_price,
                    "output_per_million": output_price,
                }
                for model, input_price, output_price in CATALOG
            ]
        )
    )


def downgrade() -> None:
    op.drop_index(
        "uq_provider_connections_default",
        table_name="provider_connections",
        postgresql_where=sa.text("is_default"),
    )
    op.drop_table("provider_connections")
    op.drop_table("model_prices")
