"""One QEMU process per guest: its command line, its taps, starting it (daemonized, in the
node's namespace, so it outlives the agent) and stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from nimbus.common import netns
from nimbus.common.settings import QemuSettings
from nimbus.compute.virt.driver import DriverError
from nimbus.compute.virt.qemu import qmp
from nimbus.compute.virt.qemu.record import LaunchRecord, Paths

START_WATCH = 0.5  # seconds a fresh QEMU must stay alive to count as started


def esc(path: Path | str) -> str:
    """A value inside a QEMU option list (commas doubled)."""
    return str(path).replace(",", ",,")


def volume_args(vol: dict[str, Any]) -> list[str]:
    return ["-blockdev", f"driver=file,node-name={vol['node']}-f,filename={esc(vol['path'])}",
            "-blockdev", f"driver={vol['format']},node-name={vol['node']},file={vol['node']}-f",
            "-device", f"virtio-blk-pci,id={vol['device']},drive={vol['node']},"
                       f"serial={vol['serial']}"]


def nic_args(vif: dict[str, Any]) -> list[str]:
    dev = vif["devname"]
    return ["-netdev", f"tap,id=net-{dev},ifname={dev},script=no,downscript=no",
            "-device", f"virtio-net-pci,id=nic-{dev},netdev=net-{dev},mac={vif['mac_address']}"]


def argv(rec: LaunchRecord, paths: Paths, settings: QemuSettings, tag: str, *,
         incoming: str | None = None) -> list[str]:
    accel = settings.accel
    if accel == "tcg" and settings.tb_size_mb:
        accel += f",tb-size={settings.tb_size_mb}"
    args = [settings.binary, "-name", f"{rec.name},debug-threads=on", "-uuid", rec.uuid,
            "-machine", settings.machine, "-accel", accel, "-m", str(rec.memory_mb),
            "-smp", str(max(1, rec.vcpus)), "-nodefaults", "-no-user-config",
            "-display", "none", "-daemonize", "-pidfile", str(paths.pidfile(tag)),
            "-chardev", f"socket,id=qmp,path={esc(paths.qmp(tag))},server=on,wait=off",
            "-mon", "chardev=qmp,mode=control",
            "-chardev", f"socket,id=serial0,path={esc(paths.serial(tag))},server=on,wait=off,"
                        f"logfile={esc(paths.console)},logappend=on",
            "-serial", "chardev:serial0"]
    if settings.accel == "kvm":
        args += ["-cpu", "host"]
    direct = bool(rec.kernel) and not rec.rescue  # a rescued guest boots the rescue disk
    if direct:
        if settings.direct_boot_firmware and Path(settings.direct_boot_firmware).is_file():
            args += ["-bios", settings.direct_boot_firmware]
        args += ["-kernel", rec.kernel, "-append", rec.cmdline]
        if rec.initrd:
            args += ["-initrd", rec.initrd]
    disks = [(paths.disk, "root")]
    if rec.rescue:
        disks.insert(0, (paths.rescue, "rescue"))
    # The kernel QEMU loads itself takes boot index 0; the disks follow it.
    for index, (path, node) in enumerate(disks, start=1 if direct else 0):
        args += ["-blockdev", f"driver=file,node-name={node}-f,filename={esc(path)}",
                 "-blockdev", f"driver=qcow2,node-name={node},file={node}-f",
                 "-device", f"virtio-blk-pci,id=disk-{node},drive={node},bootindex={index}"]
    for vif in rec.vifs:
        args += nic_args(vif)
    for vol in rec.volumes:
        args += volume_args(vol)
    if incoming:
        args += ["-incoming", incoming]
    return args


# -- processes -------------------------------------------------------------------------------------
def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int | None, uuid: str) -> bool:
    """A live (not zombie) QEMU of this guest."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and uuid.encode() in cmdline


async def wait_gone(pid: int, uuid: str, time_limit: float) -> bool:
    """True once the process has ended (event-driven through a pidfd)."""
    if not alive(pid, uuid):
        return True
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return not alive(pid, uuid)
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(fd, readable)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(ended), time_limit)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return not alive(pid, uuid)


def running_pid(rec: LaunchRecord, paths: Paths) -> int | None:
    pid = read_pid(paths.pidfile(rec.run_tag))
    return pid if alive(pid, rec.uuid) else None


# -- taps ------------------------------------------------------------------------------------------
async def tap_exists(namespace: str | None, dev: str) -> bool:
    done = await netns.run(["ip", "link", "show", "dev", dev], namespace=namespace, check=False)
    return done.returncode == 0


async def add_taps(namespace: str | None, vifs: list[dict[str, Any]], *,
                   reuse: bool) -> list[str]:
    """Create the taps (up, with the network's MTU); `reuse` takes over taps of these names
    left by an earlier run of the same guest as they are: still on their bridge, with their
    filter rules, as the L2 agent wired them (it would not see a tap made anew under the same
    name). Returns those it made."""
    made: list[str] = []
    try:
        for vif in vifs:
            dev = vif["devname"]
            if await tap_exists(namespace, dev):
                if not reuse:
                    raise DriverError(f"tap {dev} already exists in "
                                      f"{namespace or 'the root namespace'}")
            else:
                done = await netns.run(["ip", "tuntap", "add", "dev", dev, "mode", "tap"],
                                       namespace=namespace, check=False)
                if done.returncode != 0:
                    raise DriverError(f"cannot create tap {dev}: {done.stderr.strip()}")
                made.append(dev)
            up = ["ip", "link", "set", "dev", dev]
            if vif.get("mtu"):
                up += ["mtu", str(vif["mtu"])]
            await netns.run([*up, "up"], namespace=namespace)
    except Exception:
        await delete_taps(namespace, made)
        raise
    return made


async def delete_taps(namespace: str | None, devs: list[str]) -> None:
    if namespace and not netns.exists(namespace):
        return
    for dev in devs:
        await netns.run(["ip", "link", "del", "dev", dev], namespace=namespace, check=False)


def check_namespace(namespace: str | None) -> None:
    if namespace and not netns.exists(namespace):
        raise DriverError(f"node namespace {namespace} does not exist")


# -- start and stop --------------------------------------------------------------------------------
async def start(rec: LaunchRecord, paths: Paths, settings: QemuSettings, *, tag: str = "",
                incoming: str | None = None, reuse_taps: bool = True) -> int:
    """Start the guest's QEMU in its namespace; returns its pid. Leaves nothing behind
    when it fails (taps, process, run files)."""
    check_namespace(rec.namespace)
    paths.sockets.mkdir(parents=True, exist_ok=True)
    for stale in (paths.pidfile(tag), paths.qmp(tag), paths.serial(tag)):
        stale.unlink(missing_ok=True)
    taps = await add_taps(rec.namespace, rec.vifs, reuse=reuse_taps)
    try:
        returncode, stderr = await launch(
            netns.wrap(argv(rec, paths, settings, tag, incoming=incoming), rec.namespace),
            paths.dir / f"qemu{tag}.err")
        if returncode != 0:
            raise DriverError(f"QEMU failed to start: {stderr or f'exit status {returncode}'}")
        pid = read_pid(paths.pidfile(tag))
        if pid is None:
            raise DriverError("QEMU started but wrote no pid file")
        if not incoming and await wait_gone(pid, rec.uuid, START_WATCH):
            raise DriverError("QEMU exited right after it started; console: "
                              + tail(paths.console, 400).strip())
    except BaseException:
        pid = read_pid(paths.pidfile(tag))
        if pid and alive(pid, rec.uuid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            await wait_gone(pid, rec.uuid, 5)
        remove_run_files(paths, tag)
        await delete_taps(rec.namespace, taps)
        raise
    return pid


async def launch(command: list[str], errfile: Path, time_limit: float = 60.0) -> tuple[int, str]:
    """Run QEMU with -daemonize: it returns once the guest is set up (or failed to be).
    Its stderr goes to a file, not a pipe: the daemon would hold a pipe open (some event
    loops leak the pipe's other fds into the child)."""
    with errfile.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=err, start_new_session=True)
    try:
        returncode = await asyncio.wait_for(proc.wait(), time_limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        returncode = -9
    text = (await asyncio.to_thread(errfile.read_text, errors="replace")).strip()
    await asyncio.to_thread(errfile.unlink, missing_ok=True)
    return returncode, text


async def stop(rec: LaunchRecord, paths: Paths, *, clean_timeout: float = 0.0,
               keep_taps: bool = False) -> bool:
    """End the guest's QEMU: ACPI power button first when clean_timeout > 0, then `quit`,
    then SIGKILL. Removes its run files, and its taps unless `keep_taps` (the guest starts
    again on this host: a reboot, power off, suspend, rescue). True if the guest shut down
    by itself."""
    tag = rec.run_tag
    pid = read_pid(paths.pidfile(tag))
    clean = False
    if pid and alive(pid, rec.uuid):
        if clean_timeout > 0:
            with contextlib.suppress(qmp.QmpUnavailable, qmp.QmpCommandError):
                await qmp.execute(paths.qmp(tag), "system_powerdown", name=rec.name)
                clean = await wait_gone(pid, rec.uuid, clean_timeout)
        if not clean:
            with contextlib.suppress(qmp.QmpUnavailable, qmp.QmpCommandError):
                await qmp.execute(paths.qmp(tag), "quit", name=rec.name, time_limit=5)
            if not await wait_gone(pid, rec.uuid, 5):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await wait_gone(pid, rec.uuid, 5)
    remove_run_files(paths, tag)
    if not keep_taps:
        await delete_taps(rec.namespace, [v["devname"] for v in rec.vifs])
    return clean


def remove_run_files(paths: Paths, tag: str) -> None:
    for path in (paths.pidfile(tag), paths.qmp(tag), paths.serial(tag)):
        path.unlink(missing_ok=True)


def tail(path: Path, size: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(0, end - size))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
