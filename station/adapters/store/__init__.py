"""The identity store on SQLite (sqlite-utils): schema, migrations, repositories, audit chain."""
