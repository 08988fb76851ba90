"""The cloud's own test guest: a CirrOS-like image built from Debian packages.

`nimbus image build-test` builds it (builder.build) and can register it in a running cloud
(register.register). See guestfiles.py for what the guest does when it boots."""

from nimbus.guestimage.builder import BuildResult, build, default_paths, missing_tools
from nimbus.guestimage.debs import BuildError

__all__ = ["BuildError", "BuildResult", "build", "default_paths", "missing_tools"]
