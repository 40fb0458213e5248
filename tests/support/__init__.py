"""Shared test scaffolding: helpers (plain imports) and fixtures (registered once as pytest plugins
by ``tests/conftest.py``). Test folders use these instead of importing each other's conftest."""
