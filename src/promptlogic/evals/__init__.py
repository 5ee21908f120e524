"""Evals: datasets, evaluators, eval runs and promotion gates."""
