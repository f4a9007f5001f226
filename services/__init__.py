"""Kith: micro-social networks. The folder `services/` is the import root `kith`."""
