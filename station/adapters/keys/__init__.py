"""Device-key material handled by the station: injected keys and proof-of-possession checks."""
