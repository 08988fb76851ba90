"""The QEMU virt driver (compute.virt_driver = "qemu")."""

from nimbus.compute.virt.qemu.driver import QemuDriver

__all__ = ["QemuDriver"]
