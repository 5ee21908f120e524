"""Tenant rules: plain-language instructions scoped to a prompt or a named rule set."""
