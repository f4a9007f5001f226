"""Kith development tools (distribution ``kith-dev``): never installed in the production image."""
