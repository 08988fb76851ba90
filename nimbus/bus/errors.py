"""Exceptions raised by the bus to callers."""

from __future__ import annotations

from typing import Any


class BusError(Exception):
    """Base class of every error the bus itself raises."""


class BusTimeout(BusError):
    """call() got no answer in time (nobody listening, server too slow, or bus stopped)."""


class RemoteError(BusError):
    """The remote endpoint raised; carries the remote exception's type name, message and data.

    data is ``exc.to_dict()`` when the remote exception has a ``to_dict`` method, else {}.
    """

    def __init__(self, exc_type: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{exc_type}: {message}" if message else exc_type)
        self.exc_type = exc_type
        self.message = message
        self.data: dict[str, Any] = dict(data or {})


class NoSuchMethod(RemoteError):
    """The endpoint serving the target has no public method of that name.

    Raised in the caller of call() (a RemoteError subclass with exc_type "NoSuchMethod").
    """

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__("NoSuchMethod", message, data)


class UnsupportedVersion(RemoteError):
    """The endpoint's version cannot serve the version the caller's target asked for.

    Raised in the caller of call() (a RemoteError subclass with exc_type "UnsupportedVersion").
    """

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__("UnsupportedVersion", message, data)
