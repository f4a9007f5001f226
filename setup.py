"""The folder ``services/`` is the import root ``kith``: list its packages under that name."""

from setuptools import find_packages, setup

setup(packages=["kith", *(f"kith.{p}" for p in find_packages("services"))])
