"""The feed service: the fan-out worker and the per-user niche feeds it maintains."""
