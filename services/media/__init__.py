"""The media service: photos, re-encoded without metadata and encrypted at rest."""
