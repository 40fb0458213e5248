"""The fleet ledger (PostgreSQL through psycopg 3) and the station's replication outbox."""
