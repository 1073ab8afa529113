"""Errors raised by detectors."""


class ArtifactError(Exception):
    """A saved model cannot be loaded: missing, corrupt, of an unknown kind or tampered with."""


class AttributionUnavailable(NotImplementedError):
    """The detector cannot explain its score per feature (``has_attribution`` is False)."""
