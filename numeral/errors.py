"""Errors a user can act on.

Every error the tool raises on purpose derives from :class:`NumeralError`; the
command line prints its message on one line and exits with status 2 instead of
showing a traceback. Messages name the file or value at fault and what to do.
"""

from numeral.nn.errors import DivergenceError, InputError, ModelFileError, NumeralError

__all__ = [
    "ConfigError",
    "DataError",
    "DivergenceError",
    "InputError",
    "ModelFileError",
    "NumeralError",
]


class DataError(NumeralError):
    """A dataset could not be read: missing path, bad file, wrong format."""


class ConfigError(NumeralError, ValueError):
    """A training config has an unknown key, a wrong type or an impossible value."""
