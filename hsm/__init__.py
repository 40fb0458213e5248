"""Signing-key custody: CA keys and group keys that never leave their token."""
