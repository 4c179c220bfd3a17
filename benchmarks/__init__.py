"""Reproducible performance benchmarks of compute-api (see README.rst)."""
