"""The tool's own error types: every expected failure is one of these, shown as one line."""


class MnistLogregError(Exception):
    """Base class: the CLI prints ``error: <message>`` and exits with status 2."""


class DataError(MnistLogregError):
    """A data file is missing, malformed or inconsistent."""


class DownloadError(DataError):
    """No mirror delivered a file with the expected checksum."""


class CheckpointError(MnistLogregError):
    """A checkpoint cannot be read, or does not fit the model."""


class ConfigError(MnistLogregError):
    """An option value is out of range or inconsistent with another."""


class ImageError(MnistLogregError):
    """A user-supplied image cannot be used."""
