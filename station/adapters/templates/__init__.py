"""Loading the data templates (product recipes, enrollment templates) from TOML files."""
