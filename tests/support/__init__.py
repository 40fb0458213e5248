"""Test scaffolding shared by every test folder (fakes checked by contract tests)."""
