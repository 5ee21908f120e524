"""Prompts as data: prompts, immutable versions, movable labels, their history and diffs."""
