"""A small policy engine using OpenStack's check-string language.

Rules look like ``"role:admin or (role:reader and project_id:%(target.project_id)s)"``.
Supported: ``@`` (always), ``!`` (never), ``role:NAME``, ``rule:NAME``, ``KEY:VALUE`` comparing a
credential with a literal or a ``%(dotted.target.path)s`` substitution, ``'literal':%(path)s``,
``and``/``or``/``not`` and parentheses. Operators override defaults with a YAML file mapping rule
names to check strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

Check = Callable[[Mapping[str, Any], Mapping[str, Any], "Enforcer"], bool]

_TOKEN = re.compile(r"\s*(\(|\)|(?:%\([^)]*\)s|[^\s()])+)")
_SUBST = re.compile(r"^%\(([^)]+)\)s$")


class PolicyNotAuthorized(Exception):
    def __init__(self, rule: str) -> None:
        super().__init__(f"You are not authorized to perform the requested action: {rule}.")
        self.rule = rule


def _lookup(target: Mapping[str, Any], path: str) -> Any:
    if path in target:
        return target[path]
    value: Any = target
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    return "" if value is None else str(value)


def _compile_atom(word: str) -> Check:
    if word == "@":
        return lambda c, t, e: True
    if word == "!":
        return lambda c, t, e: False
    kind, sep, match = word.partition(":")
    if not sep:
        raise ValueError(f"bad policy check {word!r}")
    if kind == "role":
        wanted = match.lower()
        return lambda c, t, e: wanted in (r.lower() for r in c.get("roles", ()))
    if kind == "rule":
        return lambda c, t, e: e.check_rule(match, c, t)
    subst = _SUBST.match(match)
    if kind.startswith("'") and kind.endswith("'"):
        literal = kind[1:-1]
        if not subst:
            return lambda c, t, e: literal == match
        path = subst.group(1)
        return lambda c, t, e: literal == _as_text(_lookup(t, path))
    if subst:
        path = subst.group(1)

        def compare_target(c: Mapping[str, Any], t: Mapping[str, Any], e: Enforcer) -> bool:
            have = c.get(kind)
            return have is not None and _as_text(have) == _as_text(_lookup(t, path))

        return compare_target
    return lambda c, t, e: _as_text(c.get(kind)).lower() == match.lower()


class _Parser:
    def __init__(self, text: str) -> None:
        self.words = _TOKEN.findall(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def take(self) -> str:
        word = self.words[self.pos]
        self.pos += 1
        return word

    def parse(self) -> Check:
        if not self.words:
            return lambda c, t, e: True  # an empty rule allows, as in oslo.policy
        check = self.expr()
        if self.peek() is not None:
            raise ValueError(f"unexpected {self.peek()!r} in policy rule")
        return check

    def expr(self) -> Check:
        parts = [self.term()]
        while self.peek() == "or":
            self.take()
            parts.append(self.term())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, e: any(p(c, t, e) for p in parts)

    def term(self) -> Check:
        parts = [self.factor()]
        while self.peek() == "and":
            self.take()
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, e: all(p(c, t, e) for p in parts)

    def factor(self) -> Check:
        word = self.peek()
        if word is None:
            raise ValueError("policy rule ends too early")
        if word == "not":
            self.take()
            inner = self.factor()
            return lambda c, t, e: not inner(c, t, e)
        if word == "(":
            self.take()
            inner = self.expr()
            if self.peek() != ")":
                raise ValueError("unbalanced parentheses in policy rule")
            self.take()
            return inner
        return _compile_atom(self.take())


def compile_rule(text: str) -> Check:
    return _Parser(text).parse()


class Enforcer:
    """Holds compiled rules; one per service per process."""

    def __init__(self, defaults: Mapping[str, str], overrides: Path | None = None) -> None:
        rules = dict(defaults)
        if overrides and overrides.is_file():
            loaded = yaml.safe_load(overrides.read_text()) or {}
            rules.update({str(k): str(v) for k, v in loaded.items()})
        self.texts = rules
        self._compiled = {name: compile_rule(text) for name, text in rules.items()}

    def check_rule(self, name: str, creds: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
        check = self._compiled.get(name)
        if check is None:
            return False
        return check(creds, target, self)

    def enforce(self, name: str, creds: Mapping[str, Any], target: Mapping[str, Any]) -> None:
        if name not in self._compiled:
            raise KeyError(f"no policy rule named {name!r}")
        if not self.check_rule(name, creds, target):
            raise PolicyNotAuthorized(name)
