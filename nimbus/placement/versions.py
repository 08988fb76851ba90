"""The microversions placement speaks, and a shorthand to compare the requested one."""

from __future__ import annotations

from nimbus.web.microversion import Version, VersionRange

VERSIONS = VersionRange("placement", Version(1, 0), Version(1, 39))


def v(minor: int) -> Version:
    return Version(1, minor)
