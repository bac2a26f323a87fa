"""Background jobs (arq)."""
