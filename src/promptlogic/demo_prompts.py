"""The example logic the demo tenant starts with: a triage prompt that includes a policy."""

from __future__ import annotations

from typing import Any

COMPANY_POLICY = """\
Demo Company support policy:
- Refunds: within {{ refund_days | default(30) }} days of delivery, no questions asked.
- Shipping problems: apologise, offer a replacement, never blame the carrier.
- Security or account-takeover reports are always urgent and always go to a human.\
{% if customer_tier == "enterprise" %}
- Enterprise customers get a human reply within one hour.{% endif %}"""

TRIAGE_SYSTEM = """\
You triage customer support tickets for Demo Company.

{% include "company-policy" %}
{% if rules %}
Rules this team added (they come on top of the policy; follow them):
{% for rule in rules %}- {{ rule.text }}
{% endfor %}{% endif %}
Classify the ticket, set its priority and say whether a human must handle it.
Answer with JSON only."""

TRIAGE_USER = """\
Customer tier: {{ customer_tier }}
Subject: {{ subject }}

{{ message }}"""

TRIAGE_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer_tier": {"type": "string", "enum": ["free", "pro", "enterprise"]},
        "subject": {"type": "string", "minLength": 1, "maxLength": 200},
        "message": {"type": "string", "minLength": 1, "maxLength": 10000},
        "refund_days": {"type": "integer", "minimum": 0},
    },
    "required": ["customer_tier", "subject", "message"],
    "additionalProperties": False,
}

TRIAGE_RESPONSE_FORMAT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"enum": ["billing", "shipping", "technical", "account", "other"]},
        "priority": {"enum": ["low", "normal", "high", "urgent"]},
        "needs_human": {"type": "boolean"},
        "summary": {"type": "string", "maxLength": 300},
    },
    "required": ["category", "priority", "needs_human", "summary"],
    "additionalProperties": False,
}

RULE_CHECKER_SYSTEM = """\
You review a rule that a support team wants to add to its ticket triage.
The admins' policy for such rules:
{{ policy }}

Answer with JSON only: {"verdict": "pass"} if the rule keeps to the policy, else
{"verdict": "fail"}, with a one-sentence "reason" the rule's author will read."""

VERDICT_FORMAT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["pass", "fail"]},
        "reason": {"type": "string", "maxLength": 500},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}

TRIAGE_RULES_POLICY: dict[str, Any] = {
    "policy_text": (
        "Rules may raise or lower a ticket's priority and send tickets to a human. They must "
        "not promise refunds, compensation or reply times beyond the company policy."
    ),
    "checker": {"prompt": "rule-checker"},
}

EXAMPLE_RULES = [
    "Tickets that mention a refund above 500 EUR are always priority high.",
    "Anything about a data export or GDPR request needs a human.",
]

DEMO_PROMPTS: list[dict[str, Any]] = [
    {
        "name": "company-policy",
        "kind": "context",
        "description": "Support policy shared by every support prompt.",
        "version": {"template": COMPANY_POLICY, "commit_message": "Initial policy"},
    },
    {
        "name": "support-triage",
        "kind": "chat",
        "description": "Classifies an incoming support ticket and sets its priority.",
        "version": {
            "messages": [
                {"role": "system", "content": TRIAGE_SYSTEM},
                {"role": "user", "content": TRIAGE_USER},
            ],
            "input_schema": TRIAGE_INPUT_SCHEMA,
            "model": {"name": "gpt-4o-mini", "temperature": 0},
            "response_format": TRIAGE_RESPONSE_FORMAT,
            "context": [{"name": "rules", "source": "rules"}],
            "commit_message": "Initial triage",
        },
    },
]

DEMO_PROMPTS.append(
    {
        "name": "rule-checker",
        "kind": "chat",
        "description": "Judges a tenant rule against the admins' policy before it goes live.",
        "version": {
            "messages": [
                {"role": "system", "content": RULE_CHECKER_SYSTEM},
                {"role": "user", "content": "Rule: {{ rule }}"},
            ],
            "model": {"name": "gpt-4o-mini", "temperature": 0},
            "response_format": VERDICT_FORMAT,
            "commit_message": "Initial checker",
        },
    }
)

EXAMPLE_VARIABLES: dict[str, Any] = {
    "customer_tier": "pro",
    "subject": "Charged twice",
    "message": "Hi, I was charged twice for order 1042. Can you refund one?",
}
