"""The one root exception of reelroi, and its kinds.

Data never raises (bad events become rejections); these are for the things
an operator or a driver must act on: a sink that cannot write, a bad setting.
"""

from __future__ import annotations


class ReelroiError(Exception):
    """Root of every error reelroi raises on purpose."""


class ConfigError(ReelroiError):
    """A setting or option a user gave is wrong; not retryable."""


class SinkError(ReelroiError):
    """Writing or reading the store failed. ``code`` is the ClickHouse error code, if any."""

    retryable: bool = False

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableSinkError(SinkError):
    """Worth retrying: the server is unreachable, overloaded or timed out."""

    retryable = True


class FatalSinkError(SinkError):
    """Retrying will not help: bad SQL, a missing table, bad credentials."""
