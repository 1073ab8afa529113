"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""


class AtalaiaError(Exception):
    """Base class for every error caused by input, configuration or environment."""


class ConfigError(AtalaiaError):
    """A monitor file or a setting is invalid; the message names the file and the field."""


class SourceError(AtalaiaError):
    """A source cannot be read or lacks a required column."""


class NoSourceFilesError(SourceError):
    """A file source's pattern matches no file (yet)."""


class EmptyBatchError(AtalaiaError):
    """An interval holds no rows, or no row survived validation."""


class StoreError(AtalaiaError):
    """The SQL store is unreachable or holds something unexpected."""


class NotFoundError(AtalaiaError):
    """A monitor, batch or model version asked for does not exist in the store."""


class UsageError(AtalaiaError):
    """A command asked for something impossible (promote the champion, roll back with no
    earlier champion): recorded as a refused run, never as a failed job."""
