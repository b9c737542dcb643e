"""Persistence: the only package that speaks SQL or imports aiosqlite."""
