"""ImagePropertiesFilter: the host's architecture, hypervisor type and version suit what the
image asks for (hw_architecture, img_hv_type, img_hv_requested_version, hw_vm_mode)."""

import operator
import re
from typing import Any

from nimbus.compute.scheduler.filters import BaseFilter
from nimbus.compute.scheduler.host_state import HostState

ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "i386": "i686", "x86": "i686",
                "arm64": "aarch64"}
VM_MODES = {"hvm", "exe"}
OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt,
       "<": operator.lt, "=": operator.eq}


def _version(text: str) -> int:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0] * 1_000_000 + parts[1] * 1_000 + parts[2]


class Filter(BaseFilter):
    name = "ImagePropertiesFilter"
    run_once = True

    def host_passes(self, host: HostState, spec: dict[str, Any]) -> bool:
        props: dict[str, Any] = (spec.get("image_meta") or {}).get("properties") or {}
        arch = props.get("hw_architecture") or props.get("architecture")
        if arch and ARCH_ALIASES.get(str(arch).lower(), str(arch).lower()) != host.arch:
            return False
        hv_type = props.get("img_hv_type") or props.get("hypervisor_type")
        if hv_type and str(hv_type).lower() not in (host.hypervisor_type.lower(), "qemu") \
                and host.hypervisor_type != "fake":
            return False
        mode = props.get("hw_vm_mode") or props.get("vm_mode")
        if mode and str(mode).lower() not in VM_MODES:
            return False
        wanted = props.get("img_hv_requested_version")
        if wanted:
            m = re.match(r"^\s*(>=|<=|==|>|<|=)?\s*(.+)$", str(wanted))
            if m:
                op = OPS[m.group(1) or ">="]
                if not op(host.hypervisor_version, _version(m.group(2))):
                    return False
        return True
