"""Rigs: rigs.yaml (the inventory's schema and credentials), rig providers, and `hilt rigs check`."""
