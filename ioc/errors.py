"""The exception tree of the IOC monitor.

Every error a person may read says what is wrong and what to do next, in Vietnamese first and
then in English. The CLI prints ``str(error)`` and exits with ``error.exit_code``.

    IOCError
    ├── ConfigurationError         an IOC_* variable or a config file is invalid
    ├── CatalogueError             a catalogue data file is invalid
    ├── EventError                 an event breaks the contract (carries a reason code)
    ├── ProducerError              the broker did not acknowledge a send
    └── LocalServiceError          a local service (Kafka, Prometheus, ...) cannot start or stop
        ├── PrerequisiteMissing    Java, Maven or a binary is not installed
        ├── PortInUseError         a port the service needs is taken
        ├── CorruptDataDirError    the data directory cannot be used as it is
        └── ServiceStartError      the service started but never became ready
"""

from __future__ import annotations


class IOCError(Exception):
    """Root of every error raised on purpose by this project."""

    #: Exit code of the ``ioc`` command when this error ends it.
    exit_code: int = 1


class ConfigurationError(IOCError):
    """A setting or a configuration file is invalid."""

    exit_code = 2


class CatalogueError(IOCError):
    """A catalogue data file is missing, malformed or inconsistent."""

    exit_code = 3


class EventError(IOCError):
    """An indicator event breaks the contract.

    ``reason`` is a stable, machine-readable code (it becomes a metric label and a dead-letter
    field); the message is for people.
    """

    exit_code = 4

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProducerError(IOCError):
    """The broker did not acknowledge what was sent. Retriable once the broker is back."""

    exit_code = 5
    retriable = True


class LocalServiceError(IOCError):
    """A service run by the local runner cannot be started, stopped or reached."""

    exit_code = 6


class PrerequisiteMissing(LocalServiceError):
    """A program the local runner needs (Java 17+, Maven, a Debian package) is missing."""


class PortInUseError(LocalServiceError):
    """A TCP port the service must listen on is already taken."""


class CorruptDataDirError(LocalServiceError):
    """The data directory holds something the service cannot start from."""


class ServiceStartError(LocalServiceError):
    """The service was launched but exited or did not become ready in time."""
