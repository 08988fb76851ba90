"""What a metadata request gets back, before any HTTP: a status, a content type and a body,
and directory listings rendered as Nova renders them (one name a line, sub-directories with
a trailing slash, no final newline)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TEXT = "text/plain"
JSON = "application/json"
NOT_FOUND_BODY = "404 Not Found\n\nThe resource could not be found.\n\n"


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def to_wire(self) -> dict[str, Any]:
        """The bus form: body as text; a body that is not UTF-8 (binary user data) travels
        base64-encoded with "body_base64": True."""
        try:
            return {"status": self.status, "content_type": self.content_type,
                    "body": self.body.decode("utf-8")}
        except UnicodeDecodeError:
            return {"status": self.status, "content_type": self.content_type,
                    "body": base64.b64encode(self.body).decode("ascii"), "body_base64": True}


def from_wire(wire: Mapping[str, Any]) -> Answer:
    body = str(wire.get("body", ""))
    raw = base64.b64decode(body) if wire.get("body_base64") else body.encode("utf-8")
    return Answer(int(wire["status"]), str(wire.get("content_type") or TEXT), raw)


def not_found() -> Answer:
    return Answer(404, TEXT, NOT_FOUND_BODY.encode())


def text(value: str | bytes) -> Answer:
    return Answer(200, TEXT, value if isinstance(value, bytes) else value.encode("utf-8"))


def as_json(value: Any) -> Answer:
    return Answer(200, JSON, json.dumps(value).encode("utf-8"))


def render(node: Any) -> str:
    """A node of a metadata tree as text: a dict lists its names (sub-dicts with a trailing
    slash, or their "_name" when they carry one, as EC2's public-keys/0 shows "0=name"),
    a list one item a line, anything else as itself."""
    if isinstance(node, Mapping):
        lines = []
        for key in sorted(node):
            if key == "_name":
                continue
            value = node[key]
            if isinstance(value, Mapping):
                lines.append(str(value["_name"]) if "_name" in value else f"{key}/")
            else:
                lines.append(str(key))
        return "\n".join(lines)
    if isinstance(node, list | tuple):
        return "\n".join(str(item) for item in node)
    if isinstance(node, bytes):
        return node.decode("utf-8", errors="replace")
    return str(node)


def listing(names: Iterable[str]) -> Answer:
    return text("\n".join(names))
