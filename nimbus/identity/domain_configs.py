"""Domain-specific identity configuration (/v3/domains/{domain_id}/config), as Keystone keeps it:
only the "identity" and "ldap" groups, only the options Keystone lets a domain override.
Sensitive options (the LDAP password) are stored but never returned.

Invalid groups or options are 403 (Keystone's InvalidDomainConfig), missing ones 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nimbus.identity.models import DomainConfig
from nimbus.web.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from nimbus.identity.service import IdentityService

# Keystone's defaults for the options a domain may override ([identity] and [ldap]).
DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost", "user": None, "suffix": "cn=example,cn=com",
        "query_scope": "one", "page_size": 0, "alias_dereferencing": "default",
        "debug_level": None, "chase_referrals": None, "user_tree_dn": None,
        "user_filter": None, "user_objectclass": "inetOrgPerson", "user_id_attribute": "cn",
        "user_name_attribute": "sn", "user_mail_attribute": "mail",
        "user_description_attribute": "description", "user_pass_attribute": "userPassword",
        "user_enabled_attribute": "enabled", "user_enabled_invert": False,
        "user_enabled_mask": 0, "user_enabled_default": "True",
        "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None, "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None, "user_enabled_emulation_use_group_config": False,
        "user_additional_attribute_mapping": [], "group_tree_dn": None, "group_filter": None,
        "group_objectclass": "groupOfNames", "group_id_attribute": "cn",
        "group_name_attribute": "ou", "group_members_are_ids": False,
        "group_member_attribute": "member", "group_desc_attribute": "description",
        "group_attribute_ignore": [], "group_additional_attribute_mapping": [],
        "tls_cacertfile": None, "tls_cacertdir": None, "use_tls": False,
        "tls_req_cert": "demand", "use_pool": True, "pool_size": 10, "pool_retry_max": 3,
        "pool_retry_delay": 0.1, "pool_connection_timeout": -1,
        "pool_connection_lifetime": 600, "use_auth_pool": True, "auth_pool_size": 100,
        "auth_pool_connection_lifetime": 60,
    },
}
SENSITIVE: dict[str, tuple[str, ...]] = {"identity": (), "ldap": ("password",)}
SECURITY_COMPLIANCE = "security_compliance"
READABLE_COMPLIANCE = ("password_regex", "password_regex_description")

Config = dict[str, dict[str, Any]]


def invalid(reason: str) -> Forbidden:
    return Forbidden(f"Invalid domain specific configuration: {reason}.")


def config_not_found(domain_id: str, group: str | None, option: str | None) -> NotFound:
    if option:
        what = f"option {option} in group {group}"
    elif group:
        what = f"group {group}"
    else:
        what = "any options"
    return NotFound(f"Could not find {what} in domain configuration for domain {domain_id}.")


def _sensitive(group: str, option: str) -> bool:
    return option in SENSITIVE.get(group, ())


def check_group_option(group: str | None, option: str | None) -> None:
    if not group:
        return
    if group not in DEFAULTS:
        raise invalid(f"Group {group} is not supported for domain specific configurations")
    if option and option not in DEFAULTS[group] and not _sensitive(group, option):
        raise invalid(f"Option {option} in group {group} is not supported for domain specific "
                      "configurations")


def check_config(config: Any) -> None:
    if not config or not isinstance(config, dict):
        raise invalid("No options specified")
    for group, options in config.items():
        if not options or not isinstance(options, dict):
            raise invalid(f"The value of group {group} specified in the config should be a "
                          "dictionary of options")
        for option in options:
            check_group_option(group, option)


async def _rows(session: AsyncSession, domain_id: str, group: str | None = None,
                option: str | None = None) -> list[DomainConfig]:
    query = select(DomainConfig).where(DomainConfig.domain_id == domain_id)
    if group:
        query = query.where(DomainConfig.group == group)
    if option:
        query = query.where(DomainConfig.option == option)
    return list((await session.scalars(query.order_by(DomainConfig.group,
                                                      DomainConfig.option))).all())


def _as_config(rows: list[DomainConfig]) -> Config:
    config: Config = {}
    for row in rows:
        if not row.sensitive:
            config.setdefault(row.group, {})[row.option] = row.value
    return config


async def get_config(session: AsyncSession, domain_id: str, group: str | None = None,
                     option: str | None = None) -> dict[str, Any]:
    """The whole config, one group ({group: {...}}) or one option ({option: value})."""
    check_group_option(group, option)
    config = _as_config(await _rows(session, domain_id, group, option))
    if not config:
        raise config_not_found(domain_id, group, option)
    if option and group:
        return {option: config[group][option]}
    return config


async def _store(session: AsyncSession, domain_id: str, config: Config) -> None:
    for group, options in config.items():
        for option, value in options.items():
            row = await session.get(DomainConfig, (domain_id, group, option))
            if row is None:
                session.add(DomainConfig(domain_id=domain_id, group=group, option=option,
                                         value=value, sensitive=_sensitive(group, option)))
            else:
                row.value = value
    await session.flush()


async def create_config(session: AsyncSession, svc: IdentityService, domain_id: str,
                        config: Any) -> tuple[Config, bool]:
    """Replace the domain's config; returns it and whether the domain had none before."""
    check_config(config)
    existed = bool(await _rows(session, domain_id))
    await session.execute(delete(DomainConfig).where(DomainConfig.domain_id == domain_id))
    await _store(session, domain_id, config)
    await svc.notify("identity.domain_config.created", domain_id)
    return _as_config(await _rows(session, domain_id)), not existed


async def update_config(session: AsyncSession, svc: IdentityService, domain_id: str,
                        config: Any, group: str | None = None,
                        option: str | None = None) -> Config:
    """Merge into the config; a group or option named in the URL must already exist and be the
    only thing in the body."""
    if group and option:
        config = {group: config}
    check_config(config)
    check_group_option(group, option)
    if group:
        if len(config) != 1 or (option and len(config.get(group) or {}) != 1):
            if option:
                raise invalid(f"Trying to update option {option} in group {group}, so that, "
                              "and only that, option must be specified  in the config")
            raise invalid(f"Trying to update group {group}, so that, and only that, group "
                          "must be specified in the config")
        if group not in config:
            raise invalid(f"request to update group {group}, but config provided contains "
                          f"group {next(iter(config))} instead")
        if option and option not in config[group]:
            raise invalid(f"Trying to update option {option} in group {group}, but config "
                          f"provided contains option {next(iter(config[group]))} instead")
        if not await _rows(session, domain_id, group, option):
            raise config_not_found(domain_id, group, option)
    await _store(session, domain_id, config)
    await svc.notify("identity.domain_config.updated", domain_id)
    return _as_config(await _rows(session, domain_id))


async def delete_config(session: AsyncSession, svc: IdentityService, domain_id: str,
                        group: str | None = None, option: str | None = None) -> None:
    check_group_option(group, option)
    if group and not await _rows(session, domain_id, group, option):
        raise config_not_found(domain_id, group, option)
    query = delete(DomainConfig).where(DomainConfig.domain_id == domain_id)
    if group:
        query = query.where(DomainConfig.group == group)
    if option:
        query = query.where(DomainConfig.option == option)
    await session.execute(query)
    await svc.notify("identity.domain_config.deleted", domain_id)


def default_config(group: str | None = None, option: str | None = None) -> dict[str, Any]:
    check_group_option(group, option)
    if group and option:
        if option not in DEFAULTS[group]:
            raise invalid(f"Reading the default for option {option} in group {group} is not "
                          "supported")
        return {option: DEFAULTS[group][option]}
    if group:
        return {group: dict(DEFAULTS[group])}
    return {g: dict(options) for g, options in DEFAULTS.items()}


def security_compliance(svc: IdentityService, domain_id: str,
                        option: str | None) -> dict[str, Any]:
    """The password rules the default domain enforces, readable by its users."""
    if domain_id != "default":
        raise invalid("Reading security compliance information for any domain other than the "
                      "default domain is not allowed or supported")
    if option and option not in READABLE_COMPLIANCE:
        raise invalid("Reading security compliance values other than password_regex and "
                      "password_regex_description is not allowed")
    values = {name: getattr(svc.settings, name, None) for name in READABLE_COMPLIANCE}
    if option:
        return {option: values[option]}
    return {SECURITY_COMPLIANCE: values}
