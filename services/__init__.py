"""Kith: micro-social networks. The folder `services/` is the import root `kith`."""

if __name__ != "kith":  # one name per module: `services.common` would be a second kith.common
    raise ImportError(f"the folder services/ is the package kith: import kith.<name>, "
                      f"not {__name__}.<name>")
