"""The package version, on its own so low layers can read it without importing the package's entry points."""
__version__ = "0.1.0"
