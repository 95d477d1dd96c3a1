"""Domain logic of the identity service (no HTTP, no SQL)."""
