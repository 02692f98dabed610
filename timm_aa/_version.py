"""The package version (its own module: the report and the package both read it)."""

__version__ = "0.1.0"
