"""Errors raised by detectors."""


class ArtifactError(Exception):
    """A saved model cannot be loaded: missing, corrupt, of an unknown kind or tampered with."""
