"""Exceptions for bad input. Each carries a one-line message naming the file or value and the fix.

The command line prints these as ``error: <message>`` and exits with status 2, never with a
traceback; library users can catch :class:`DeconvganError` for all of them.
"""


class DeconvganError(Exception):
    """Base class for every error caused by input the user can correct."""


class ConfigError(DeconvganError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


class DataError(DeconvganError, ValueError):
    """A dataset file or folder is missing, corrupt, or inconsistent."""


class CheckpointError(DeconvganError, ValueError):
    """A snapshot or training-state file is missing, truncated, foreign or too new."""


class OutputError(DeconvganError, OSError):
    """A file could not be written (disk full, permission denied); the previous version is intact."""


class TrainingDiverged(DeconvganError):
    """A loss, penalty or weight went non-finite; the last good snapshot and training state are kept.

    The command line exits with :data:`DIVERGED_EXIT_STATUS` for it (not 2: the input was valid).
    """


DIVERGED_EXIT_STATUS = 3  # `deconvgan train` when the divergence guard stopped the run
