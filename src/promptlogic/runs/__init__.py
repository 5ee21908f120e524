"""Runs: the records of executions, written behind the hot path, and reading them back."""
