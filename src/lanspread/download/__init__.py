"""download layer."""
