"""The tool's own error types: every expected failure is one of these, shown as one line."""
from __future__ import annotations

import re

_MARK = re.compile("\x1f([A-Za-z_][A-Za-z0-9_]*)\x1f")


def setting_ref(name: str) -> str:
    """A setting's name inside a :class:`ConfigError` message, marked so that each front end
    shows it its own way: the library as ``lr``, the CLI as ``--lr``, a config file as its key."""
    return f"\x1f{name}\x1f"


class MnistLogregError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits with status 2.

    A message may name settings with :func:`setting_ref`: ``str(e)`` names them as the library
    does (``lr``); :meth:`render` names them another way, e.g. as command-line flags (``--lr``).
    ``e.settings`` lists the names involved.
    """

    def __init__(self, message: str = ""):
        self.template = message
        self.settings = tuple(_MARK.findall(message))
        super().__init__(_MARK.sub(r"\1", message))

    def render(self, name_of) -> str:
        """The message with each setting shown as ``name_of(setting)``."""
        return _MARK.sub(lambda m: name_of(m.group(1)), self.template)


class DataError(MnistLogregError):
    """A data file is missing, malformed or inconsistent."""


class DownloadError(DataError):
    """No mirror delivered a file with the expected checksum."""


class CheckpointError(MnistLogregError):
    """A checkpoint cannot be read, or does not fit the model."""


class ConfigError(MnistLogregError):
    """A setting's value is out of range or inconsistent with another."""


class ImageError(MnistLogregError):
    """A user-supplied image cannot be used."""


class TrainingDiverged(MnistLogregError):
    """The loss became NaN or infinite, or the weights grew past what a checkpoint may hold."""


class TrainingInterrupted(MnistLogregError):
    """Ctrl-C: training stopped between batches; ``fit`` returns what it has."""
