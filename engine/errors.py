"""The engine's exceptions, in a leaf module every layer may import (config, strategies, data,
train, kinds, jobs) without importing each other."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input, with one line that names the field and what is allowed."""


class CapExceeded(ConfigError):
    """A request over a hosted-mode cap or the queue bound (one line naming the cap)."""


class Cancelled(RuntimeError):
    """The caller asked the computation to stop."""


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class DataUnavailable(RuntimeError):
    """A dataset's files are not on this machine (and it cannot download them)."""
