"""Wire format shared by both backends: JSON (orjson) bodies for requests, replies, notifications.

Request:      {"method": str, "args": {...}, "context": {...}, "version": "1.0" | null}
Reply:        {"result": ...} or {"error": {"kind", "exc_type", "message", "data"}}
Notification: {"event_type", "payload", "publisher_id", "priority", "timestamp",
               "message_id", "context"}

Values orjson handles natively (datetimes, dates, UUIDs, enums, dataclasses) become JSON
strings/objects; sets become lists, Decimals strings, objects with ``model_dump`` (pydantic) or
``to_dict`` their dict. Anything else raises TypeError in the sender.
"""

from __future__ import annotations

import decimal
import fnmatch
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from nimbus.bus.errors import NoSuchMethod, RemoteError, UnsupportedVersion

PRIORITIES = frozenset({"AUDIT", "CRITICAL", "DEBUG", "INFO", "WARN", "ERROR", "SAMPLE"})

_KIND_REMOTE = "remote"
_KIND_NO_SUCH_METHOD = "no_such_method"
_KIND_UNSUPPORTED_VERSION = "unsupported_version"


def _default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable on the bus")


def dumps(obj: Any) -> bytes:
    """Encode a value as JSON bytes (TypeError if it holds something unencodable)."""
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    """Decode JSON bytes."""
    return orjson.loads(data)


def pack_request(
    method: str, args: dict[str, Any], context: dict[str, Any] | None, version: str | None
) -> bytes:
    """Encode an RPC request body."""
    if not isinstance(method, str) or not method:
        raise ValueError(f"bus method must be a non-empty string, got {method!r}")
    return dumps({"method": method, "args": args, "context": context or {}, "version": version})


def pack_result(result: Any) -> bytes:
    """Encode a successful reply."""
    return dumps({"result": result})


def exception_data(exc: BaseException) -> dict[str, Any]:
    """exc.to_dict() if it has one and it is JSON-encodable, else {}."""
    to_dict = getattr(exc, "to_dict", None)
    if not callable(to_dict):
        return {}
    try:
        data = to_dict()
        if not isinstance(data, dict):
            return {}
        return dict(loads(dumps(data)))
    except Exception:
        return {}


def pack_error(exc: BaseException) -> bytes:
    """Encode a failed reply for the caller."""
    if isinstance(exc, NoSuchMethod):
        kind = _KIND_NO_SUCH_METHOD
    elif isinstance(exc, UnsupportedVersion):
        kind = _KIND_UNSUPPORTED_VERSION
    else:
        kind = _KIND_REMOTE
    if isinstance(exc, RemoteError):
        exc_type, message, data = exc.exc_type, exc.message, exc.data
    else:
        exc_type, message, data = type(exc).__name__, str(exc), exception_data(exc)
    error = {"kind": kind, "exc_type": exc_type, "message": message, "data": data}
    try:
        return dumps({"error": error})
    except TypeError:
        error["data"] = {}
        return dumps({"error": error})


def unpack_reply(body: bytes) -> Any:
    """Decode a reply: return the result or raise the matching RemoteError."""
    reply = loads(body)
    error = reply.get("error")
    if error is None:
        return reply.get("result")
    message = str(error.get("message", ""))
    data = error.get("data") or {}
    kind = error.get("kind")
    if kind == _KIND_NO_SUCH_METHOD:
        raise NoSuchMethod(message, data)
    if kind == _KIND_UNSUPPORTED_VERSION:
        raise UnsupportedVersion(message, data)
    raise RemoteError(str(error.get("exc_type", "Exception")), message, data)


def pack_notification(
    event_type: str,
    payload: dict[str, Any],
    *,
    publisher_id: str,
    priority: str,
    context: dict[str, Any] | None,
) -> bytes:
    """Encode a notification, stamping it with a UTC timestamp and a message id."""
    if not isinstance(event_type, str) or not event_type:
        raise ValueError(f"event_type must be a non-empty string, got {event_type!r}")
    prio = str(priority).upper()
    if prio == "WARNING":
        prio = "WARN"
    if prio not in PRIORITIES:
        raise ValueError(f"unknown notification priority {priority!r}")
    return dumps(
        {
            "event_type": event_type,
            "payload": payload,
            "publisher_id": publisher_id,
            "priority": prio,
            "timestamp": datetime.now(UTC).isoformat(),
            "message_id": str(uuid.uuid4()),
            "context": context or {},
        }
    )


def event_matches(pattern: str, event_type: str) -> bool:
    """fnmatch-style, case-sensitive match of an event type against a subscription pattern."""
    return fnmatch.fnmatchcase(event_type, pattern)


def binding_key(pattern: str) -> str:
    """An AMQP topic binding key that matches a superset of the fnmatch pattern.

    Literal dot-separated words before the first wildcard are kept, the rest becomes "#";
    receivers filter exactly with event_matches().
    """
    words: list[str] = []
    for word in pattern.split("."):
        if any(ch in word for ch in "*?[]#"):
            words.append("#")
            break
        words.append(word)
    return ".".join(words)
