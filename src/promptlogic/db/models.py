"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from promptlogic.audit.models import AuditEvent
from promptlogic.context.models import ContextRecord
from promptlogic.db.base import Base
from promptlogic.evals.models import Dataset, DatasetCase, EvalResult, EvalRun, PromptGate
from promptlogic.knowledge.models import Chunk, Collection, Document
from promptlogic.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion
from promptlogic.providers.models import ModelPrice, ProviderConnection
from promptlogic.rules.models import Rule, RuleRevision
from promptlogic.runs.models import IdempotencyKey, Run
from promptlogic.tenancy.models import ApiKey, Membership, Tenant, User
from promptlogic.ui.models import WebSession
from promptlogic.usage.models import RateWindow, UsageLimit

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Chunk",
    "Collection",
    "ContextRecord",
    "Dataset",
    "DatasetCase",
    "Document",
    "EvalResult",
    "EvalRun",
    "IdempotencyKey",
    "LabelMove",
    "Membership",
    "ModelPrice",
    "Prompt",
    "PromptGate",
    "PromptLabel",
    "PromptVersion",
    "ProviderConnection",
    "RateWindow",
    "Rule",
    "RuleRevision",
    "Run",
    "Tenant",
    "UsageLimit",
    "User",
    "WebSession",
]
