"""Database access: engine and sessions, the embedded Postgres, migrations, LISTEN/NOTIFY."""
