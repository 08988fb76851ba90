"""Where an RPC message goes: a topic, optionally one server on it, and the version needed."""

from __future__ import annotations

from dataclasses import dataclass

_FORBIDDEN_IN_TOPIC = frozenset("*#: \t\r\n")
_FORBIDDEN_IN_SERVER = frozenset("*# \t\r\n")


def parse_version(version: str) -> tuple[int, int]:
    """Parse "major.minor" into a tuple of ints; raise ValueError if malformed."""
    major, sep, minor = str(version).partition(".")
    if not sep or not major.isdigit() or not minor.isdigit():
        raise ValueError(f"bus version must look like 'major.minor', got {version!r}")
    return int(major), int(minor)


def version_compatible(offered: str, requested: str) -> bool:
    """True if an endpoint at version `offered` can serve a caller that needs `requested`.

    Same major, and the requested minor is not newer than the offered one.
    """
    o_major, o_minor = parse_version(offered)
    r_major, r_minor = parse_version(requested)
    return o_major == r_major and r_minor <= o_minor


@dataclass(frozen=True)
class Target:
    """The destination of an RPC call or cast.

    topic:   the service role, e.g. "compute", "conductor", "identity".
    server:  one specific host/worker on the topic; None means any one server listening
             on the topic (a work queue).
    version: the endpoint version the caller needs, "major.minor".
    """

    topic: str
    server: str | None = None
    version: str = "1.0"

    def __post_init__(self) -> None:
        if not self.topic or _FORBIDDEN_IN_TOPIC & set(self.topic):
            raise ValueError(
                f"invalid bus topic {self.topic!r}: must be non-empty without '*', '#', ':' "
                "or whitespace"
            )
        if self.server is not None and (not self.server or _FORBIDDEN_IN_SERVER & set(self.server)):
            raise ValueError(
                f"invalid bus server {self.server!r}: must be non-empty without '*', '#' "
                "or whitespace"
            )
        parse_version(self.version)

    @property
    def routing_key(self) -> str:
        """The key a message to this target is routed by ("topic" or "topic:server")."""
        return self.topic if self.server is None else f"{self.topic}:{self.server}"
