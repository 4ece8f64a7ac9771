"""Soft-Label Audit: a controlled audit of soft-label learning."""

__version__ = "0.1.0"
