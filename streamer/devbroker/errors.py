"""Errors of the dev broker, under streamer's own hierarchy so callers can catch StreamerError."""

from __future__ import annotations

from streamer.errors import BrokerUnavailableError, StreamerError


class DevBrokerError(StreamerError):
    """Base class of the dev broker's errors."""


class JarFetchError(DevBrokerError):
    """Maven is missing or could not resolve the Kafka jars."""


class JavaNotFoundError(DevBrokerError):
    """No usable ``java`` (JDK/JRE 17 or newer) is on PATH or under JAVA_HOME."""


class BrokerStartError(DevBrokerError, BrokerUnavailableError):
    """A broker node did not come up (formatting failed, it died, or it never answered in time)."""
