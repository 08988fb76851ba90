"""The policy engine reads OpenStack check strings the way oslo.policy does."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimbus.common.policy import Enforcer, PolicyNotAuthorized, compile_rule

READER_IN_DOMAIN = "role:admin or (role:reader and domain_id:%(target.domain_id)s)"


def check(rule: str, creds: dict, target: dict | None = None) -> bool:
    return compile_rule(rule)(creds, target or {}, Enforcer({}))


@pytest.mark.parametrize("creds,target,expected", [
    ({"roles": ["admin"]}, {}, True),
    ({"roles": ["reader"], "domain_id": "d1"}, {"target": {"domain_id": "d1"}}, True),
    ({"roles": ["reader"], "domain_id": "d1"}, {"target": {"domain_id": "d2"}}, False),
    ({"roles": ["member"], "domain_id": "d1"}, {"target": {"domain_id": "d1"}}, False),
    ({"roles": ["reader"], "domain_id": None}, {"target": {"domain_id": None}}, False),
])
def test_role_and_target_checks(creds: dict, target: dict, expected: bool) -> None:
    assert check(READER_IN_DOMAIN, creds, target) is expected


def test_not_always_never_and_literals() -> None:
    assert check("@", {}) and not check("!", {})
    assert check("not role:admin", {"roles": ["member"]})
    assert check("system_scope:all", {"system_scope": "all"})
    assert not check("system_scope:all", {"system_scope": None})
    assert check("'member':%(role.name)s", {}, {"role": {"name": "member"}})
    assert check("role:ADMIN", {"roles": ["admin"]})  # role names are case-insensitive


def test_rules_reference_rules_and_files_override(tmp_path: Path) -> None:
    overrides = tmp_path / "policy.yaml"
    overrides.write_text('"identity:list_projects": "role:reader"\n')
    enforcer = Enforcer({"admin_required": "role:admin",
                         "identity:list_projects": "rule:admin_required"}, overrides)
    enforcer.enforce("identity:list_projects", {"roles": ["reader"]}, {})
    with pytest.raises(PolicyNotAuthorized):
        enforcer.enforce("admin_required", {"roles": ["reader"]}, {})


@pytest.mark.parametrize("bad", ["role:admin or", "(role:admin", "role:admin )", "nonsense"])
def test_malformed_rules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_rule(bad)
