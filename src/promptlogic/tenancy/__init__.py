"""Tenants, users, memberships and roles, API keys, and the principal behind a request."""
