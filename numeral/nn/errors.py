"""Exceptions raised by the network core (standard library only)."""


class NumeralError(Exception):
    """Base of every error numeral raises on purpose; its message is one actionable line."""


class InputError(NumeralError, ValueError):
    """An argument has the wrong shape, type or value."""


class ModelFileError(NumeralError):
    """A model file is missing, corrupt, tampered with, or from a newer numeral."""


class DivergenceError(NumeralError, FloatingPointError):
    """Training produced a NaN or infinite loss."""
