"""Exceptions with messages meant for users. The CLI maps ``UserError`` to exit code 2."""


class FastDDSPError(Exception):
    """Base class of fastddsp's own errors."""


class UserError(FastDDSPError):
    """Bad input from the user: a missing or unreadable file, an unknown name, bad values."""


class ModelFileError(UserError):
    """A model file that is missing, truncated, tampered with or of an unknown version."""


class UnknownModelError(UserError):
    """A model name that is neither a file, a bundled model nor a preset."""
