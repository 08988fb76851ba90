"""Kernel modules for the guest's initramfs, in an order `insmod` can load them.

Debian's kernel package ships no modules.dep (depmod runs at install time), and the host may
have no kmod; each .ko names its dependencies in its .modinfo section (`depends=a,b`)."""

from __future__ import annotations

import re
from pathlib import Path

from nimbus.guestimage.debs import BuildError

# What the guest needs on QEMU's `pc` machine: virtio disks, NIC and RNG, SCSI disks, the ACPI
# power button (soft shutdown/reboot) and the event device busybox acpid reads it from.
WANTED = ("virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "sd_mod", "virtio_rng",
          "button", "evdev")

_DEPENDS = re.compile(rb"(?:^|\x00)depends=([^\x00]*)\x00")


def _name(path: Path) -> str:
    return path.name.removesuffix(".ko").replace("-", "_")


def index(modules_dir: Path) -> dict[str, Path]:
    """Module name (with '_' for '-') -> .ko file, for a /lib/modules/<version> folder."""
    found = {_name(p): p for p in modules_dir.rglob("*.ko")}
    if not found:
        raise BuildError(f"no kernel modules (*.ko) under {modules_dir}")
    return found


def depends(path: Path) -> list[str]:
    match = _DEPENDS.search(path.read_bytes())
    if not match or not match.group(1):
        return []
    return [d.decode().replace("-", "_") for d in match.group(1).split(b",") if d]


def load_order(modules: dict[str, Path], wanted: tuple[str, ...] = WANTED) -> list[Path]:
    """The wanted modules and all they depend on, each after its dependencies."""
    order: list[Path] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise BuildError(f"kernel modules depend on each other in a cycle: {chain}")
        if name not in modules:
            raise BuildError(f"kernel module {name} not found (needed by {' <- '.join(chain)})")
        state[name] = "visiting"
        for dep in depends(modules[name]):
            visit(dep, (*chain, dep))
        state[name] = "done"
        order.append(modules[name])

    for name in wanted:
        visit(name.replace("-", "_"), (name,))
    return order
