"""Operator commands: backups, preflight checks, environment files, legacy import."""
