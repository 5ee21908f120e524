"""Background jobs: the Postgres-backed queue (PgQueuer) and the worker that runs them."""
