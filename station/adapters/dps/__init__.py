"""DPS service API adapter (the official client) and the SQLite push outbox."""
