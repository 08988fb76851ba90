"""The all-in-one's data plane: one node whose bridges, taps and guests live in the network
namespace `nimbus-node`, so the machine's own interfaces, addresses and routes stay untouched.

The external network `public` (flat, physical network "public") is bridged to `pub0` in that
namespace, one end of a veth pair. Its other end `nimbus-ext` stays inside the namespace
(nothing outside reaches the floating IPs), unless the user asks to expose the external network:
then it moves to the machine's own namespace with the public subnet's gateway address, so that
floating IPs answer from the shell."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
from pathlib import Path

from nimbus.common import netns
from nimbus.common.settings import NodeSettings, Settings
from nimbus.network.dataplane import ip

NODE_NAMESPACE = "nimbus-node"
PUBLIC_INTERFACE = "pub0"
EXTERNAL_END = "nimbus-ext"


def missing() -> list[str]:
    """What this machine lacks for the real data plane (empty: it can run it)."""
    lacking = [tool for tool in ("ip", "qemu-system-x86_64", "qemu-img", "dnsmasq", "iptables")
               if shutil.which(tool) is None]
    if os.geteuid() != 0:
        lacking.append("root")
    if not Path("/dev/net/tun").exists():
        lacking.append("/dev/net/tun")
    return lacking


def configure(settings: Settings) -> None:
    """Turn the real data plane on, unless the configuration already chose."""
    if "enabled" not in settings.dataplane.model_fields_set:
        settings.dataplane.enabled = True
    if not settings.dataplane.enabled:
        return
    if "virt_driver" not in settings.compute.model_fields_set:
        settings.compute.virt_driver = "qemu"
    node = settings.dataplane.default_node
    if "namespace" not in node.model_fields_set:
        node.namespace = NODE_NAMESPACE
    if "physical_interface_mappings" not in node.model_fields_set:
        node.physical_interface_mappings = {settings.network.public_physical_network:
                                            PUBLIC_INTERFACE}


def gateway_cidr(settings: Settings) -> str:
    net = ipaddress.ip_network(settings.network.public_cidr, strict=False)
    return f"{next(net.hosts())}/{net.prefixlen}"


async def prepare(node: NodeSettings, settings: Settings, *, expose_external: bool) -> None:
    """The node namespace and the public interface (both kept across restarts)."""
    namespace = node.namespace
    if namespace:
        await netns.ensure(namespace)
    public = node.physical_interface_mappings.get(settings.network.public_physical_network)
    if not public or await ip.link_exists(namespace, public):
        return
    await ip.add_veth(namespace, public, EXTERNAL_END,
                      None if expose_external and namespace else namespace)
    await ip.set_up(namespace, public)
    if expose_external and namespace:
        await ip.replace_addr(None, EXTERNAL_END, gateway_cidr(settings))
        await ip.set_up(None, EXTERNAL_END)
    else:
        await ip.set_up(namespace, EXTERNAL_END)


async def purge(settings: Settings) -> list[str]:
    """Remove the all-in-one's data plane: every process in its namespaces (guests, dnsmasq),
    the namespaces, and the exposed external end. Returns the namespaces removed."""
    prefix = settings.dataplane.namespace_prefix
    node = settings.dataplane.default_node.namespace or NODE_NAMESPACE
    doomed = [ns for ns in netns.list_namespaces()
              if ns == node or ns.startswith((f"{prefix}qdhcp-", f"{prefix}qrouter-"))]
    for namespace in doomed:
        done = await netns.run(["ip", "netns", "pids", namespace], check=False)
        for pid in done.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        await netns.delete(namespace)
    await ip.delete_link(None, EXTERNAL_END)
    return doomed
