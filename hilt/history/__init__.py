"""The run history: series of metrics across runs, kept in SQLite or PostgreSQL."""
