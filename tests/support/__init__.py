"""Shared test helpers: what the fixtures of conftest.py are built from, and the types
tests use to name them. Tests import from here, never from conftest."""
