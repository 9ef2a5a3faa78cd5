"""The test suite: a package, so that its modules import the shared tests/helpers.py by name."""
