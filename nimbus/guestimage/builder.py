"""Builds the test guest: a Debian cloud kernel and a busybox + dropbear initramfs on a
bootable qcow2 (MBR, one FAT32 partition, SYSLINUX installed with mtools: no mount, no loop
device). See guestfiles.py for what the guest does when it boots."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimbus.guestimage import debs, guestfiles, kernelfile, modules
from nimbus.guestimage.cpio import Archive
from nimbus.guestimage.debs import BuildError, run

# Bump when the recipe changes in a way the inputs below do not show.
RECIPE = 1
KERNEL_META = "linux-image-cloud-amd64"
USERLAND = ("busybox-static",)
SSH_SERVER = "dropbear-bin"
DISK_MB = 64  # FAT32 needs at least 65525 clusters: 64 MiB with 512-byte clusters
PART_START = 2048  # sectors: the partition starts at 1 MiB
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
# The modules whose code shapes the image (not the CLI or registration).
IMAGE_SOURCES = ("builder.py", "cpio.py", "debs.py", "guestfiles.py", "kernelfile.py",
                 "modules.py")
# tool -> Debian package that has it
TOOLS = {"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg", "sfdisk": "fdisk",
         "mkfs.vfat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux",
         "qemu-img": "qemu-utils"}


@dataclass
class BuildResult:
    path: Path
    built: bool  # False: it was up to date
    manifest: dict[str, Any]
    seconds: float


def default_paths(state_dir: Path) -> tuple[Path, Path]:
    """(image, cache) in a cloud's state folder. `nimbus up` registers what it finds in
    <state_dir>/guest-images/ as public images named after the files: nimbus-test."""
    return state_dir / "guest-images" / "nimbus-test.qcow2", state_dir / "guest-image-cache"


def sidecars(output: Path) -> tuple[Path, Path]:
    """(kernel, ramdisk) written beside the disk image for direct kernel boot: registered as
    the aki and ari images the disk image's kernel_id and ramdisk_id name, as DevStack does
    with CirrOS. Booted that way the guest skips its firmware's disk reads, SYSLINUX and the
    kernel's self-decompression: about 1.5 s of a TCG boot."""
    return output.with_suffix(".kernel"), output.with_suffix(".initrd")


def missing_tools() -> list[str]:
    """'tool (package)' for each host tool the build needs and does not find."""
    missing = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if not MBR_BIN.is_file():
        missing.append(f"{MBR_BIN} (syslinux-common)")
    return missing


def recipe_key(packages: list[debs.Package]) -> str:
    """Changes whenever the image would: the package versions and this package's code (the
    guest's files, module list and the build steps all live in it)."""
    code = hashlib.sha256()
    for name in IMAGE_SOURCES:
        code.update(name.encode() + b"\0" + (Path(__file__).parent / name).read_bytes())
    text = json.dumps({"recipe": RECIPE, "packages": [p.filename for p in packages],
                       "code": code.hexdigest()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_path(output: Path) -> Path:
    return output.with_name(output.name + ".json")


def read_manifest(output: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(manifest_path(output).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build(output: Path, cache: Path, force: bool = False,
          log: Callable[[str], None] = lambda _msg: None) -> BuildResult:
    """Build the image at `output` unless it is there and up to date; .debs are kept in
    `cache`/debs between builds."""
    started = time.monotonic()
    if shutil.which("apt-cache") is None:
        raise BuildError("missing host tools: apt-cache (apt)")
    deb_cache = debs.DebCache(cache / "debs")
    with deb_cache.locked():
        recipe = debs.resolve_recipe(cache, KERNEL_META, SSH_SERVER, USERLAND)
        kernel, ssh, packages = recipe.kernel, recipe.ssh, recipe.packages
        key = recipe_key(packages)
        old = read_manifest(output)
        if not force and output.is_file() and old and old.get("key") == key \
                and old.get("size") == output.stat().st_size \
                and all(p.is_file() for p in sidecars(output)):
            return BuildResult(output, False, old, time.monotonic() - started)
        if missing := missing_tools():
            raise BuildError("missing host tools: " + ", ".join(missing))
        log(f"fetching {len(packages)} packages into {deb_cache.folder}")
        files = dict(zip([p.name for p in packages], deb_cache.fetch(packages), strict=True))
        with tempfile.TemporaryDirectory(prefix="build-", dir=cache) as tmp:
            manifest = _assemble(Path(tmp), files, kernel, ssh, output, log)
        manifest.update(key=key, packages={p.name: p.version for p in packages},
                        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        tmp_manifest = manifest_path(output).with_name(f".{output.name}.json.part")
        tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        tmp_manifest.replace(manifest_path(output))
    log(f"built {output} ({manifest['size'] / 1e6:.1f} MB) in "
        f"{time.monotonic() - started:.1f} s")
    return BuildResult(output, True, manifest, time.monotonic() - started)


def _assemble(work: Path, files: dict[str, Path], kernel: str, ssh: list[str],
              output: Path, log: Callable[[str], None]) -> dict[str, Any]:
    kroot, uroot = work / "kernel", work / "userland"
    debs.extract(files[kernel], kroot)
    for name in (*USERLAND, *ssh):
        debs.extract(files[name], uroot)
    vmlinuz = next(iter(sorted((kroot / "boot").glob("vmlinuz-*"))), None)
    if vmlinuz is None:
        raise BuildError(f"{kernel} has no /boot/vmlinuz-*")
    version = vmlinuz.name.removeprefix("vmlinuz-")
    log(f"kernel {version}; assembling the initramfs")
    archive = Archive()
    _userland(archive, uroot)
    kmods = _kernel_modules(archive, kroot / "lib" / "modules" / version, version)
    initrd = work / "initrd.gz"
    archive.write_gzip(initrd)
    log(f"initramfs {initrd.stat().st_size / 1e6:.1f} MB; making the disk")
    _disk(work, vmlinuz, initrd, output)
    direct = _direct_boot_files(work, vmlinuz, archive, output)
    data = output.read_bytes()
    return {"kernel": version, "modules": kmods, "size": len(data), "direct_boot": direct,
            "kernel_size": vmlinuz.stat().st_size, "initrd_size": initrd.stat().st_size,
            "sha256": hashlib.sha256(data).hexdigest(),
            "sha512": hashlib.sha512(data).hexdigest(),
            "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "kernel_args": guestfiles.KERNEL_ARGS}


def _userland(archive: Archive, uroot: Path) -> None:
    busybox = uroot / "bin" / "busybox"
    # Set-uid root, as on CirrOS, so that `ping` works for cirros: busybox keeps root only
    # for the applets that need it (ping, traceroute, su…) and drops it for all others.
    archive.copy("bin/busybox", busybox, 0o4755)
    for applet in run([str(busybox), "--list-full"]).split():
        if applet.strip("/") not in archive:
            archive.symlink(applet, "/bin/busybox")
    archive.symlink("init", "/bin/busybox")
    for folder in ("proc", "sys", "dev", "run", "tmp", "root", "var/log", "etc/dropbear",
                   "home/cirros"):
        archive.dir(folder, 0o700 if folder in ("root", "home/cirros") else 0o755)
    archive.symlink("var/run", "/run")
    archive.symlink("etc/mtab", "/proc/mounts")
    archive.chardev("dev/console", 5, 1)
    archive.chardev("dev/null", 1, 3, 0o666)
    for path, (mode, text) in guestfiles.FILES.items():
        archive.file(path, text, mode)
    # dropbear and the libraries it loads, as the downloaded loader resolves them.
    binaries = {"usr/sbin/dropbear": uroot / "usr/sbin/dropbear",
                "usr/bin/dropbearkey": uroot / "usr/bin/dropbearkey",
                "usr/bin/dbclient": uroot / "usr/bin/dbclient"}
    for path, source in binaries.items():
        if not source.is_file():
            raise BuildError(f"{SSH_SERVER} has no /{path}")
        archive.copy(path, source, 0o755)
    for name, source in _libraries(uroot, list(binaries.values())).items():
        archive.copy(f"lib/x86_64-linux-gnu/{name}", source, 0o755)
    archive.symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def _libraries(uroot: Path, binaries: list[Path]) -> dict[str, Path]:
    """soname -> file in the unpacked packages, for everything the binaries need (ldd, with
    the packages' own loader and library folders, so the host's libraries never count)."""
    libdirs = [uroot / "lib/x86_64-linux-gnu", uroot / "usr/lib/x86_64-linux-gnu"]
    loader = libdirs[0] / "ld-linux-x86-64.so.2"
    if not loader.is_file():
        raise BuildError("the unpacked libc6 has no ld-linux-x86-64.so.2")
    found: dict[str, Path] = {"ld-linux-x86-64.so.2": loader}
    nss = libdirs[0] / "libnss_files.so.2"
    if nss.is_file():
        found[nss.name] = nss
    for binary in binaries:
        out = run([str(loader), "--inhibit-cache", "--library-path",
                   ":".join(map(str, libdirs)), "--list", str(binary)])
        for line in out.splitlines():
            name, arrow, rest = line.strip().partition(" => ")
            if not arrow:
                continue
            target = rest.split(" (")[0].strip()
            if target == "not found" or not target.startswith(str(uroot)):
                raise BuildError(f"{binary.name} needs {name}, which the downloaded packages "
                                 f"do not provide (resolved to {target!r})")
            found[name] = Path(target)
    return found


def _kernel_modules(archive: Archive, moddir: Path, version: str) -> list[str]:
    order = modules.load_order(modules.index(moddir))
    rel = [str(p.relative_to(moddir)) for p in order]
    for path, source in zip(rel, order, strict=True):
        archive.copy(f"lib/modules/{version}/{path}", source, 0o644)
    # modules.dep, so that `modprobe` works in the guest for what it has.
    names = {modules._name(p): r for p, r in zip(order, rel, strict=True)}
    dep_lines = [f"{r}: " + " ".join(names[d] for d in modules.depends(p))
                 for p, r in zip(order, rel, strict=True)]
    archive.file(f"lib/modules/{version}/modules.dep", "\n".join(dep_lines) + "\n")
    archive.file("etc/nimbus/modules", "\n".join(rel) + "\n")
    return [modules._name(p) for p in order]


def _direct_boot_files(work: Path, vmlinuz: Path, archive: Archive,
                       output: Path) -> dict[str, Any]:
    """The kernel (see kernelfile.py) and an uncompressed initramfs (unpacking 3.5 MB of
    gzip costs the guest 0.2 s under TCG) beside the disk image; what the manifest says of
    them."""
    kernel_out, initrd_out = sidecars(output)
    kernel_tmp, initrd_tmp = work / "direct.kernel", work / "direct.initrd"
    kind = kernelfile.direct_boot_kernel(vmlinuz, kernel_tmp)
    initrd_tmp.write_bytes(archive.cpio())
    found = {}
    for tmp, final, key in ((kernel_tmp, kernel_out, "kernel"), (initrd_tmp, initrd_out,
                                                                  "ramdisk")):
        part = final.with_name(f".{final.name}.part")
        shutil.copyfile(tmp, part)
        part.replace(final)
        found[key] = {"file": final.name, "size": final.stat().st_size,
                      "sha512": hashlib.sha512(final.read_bytes()).hexdigest()}
    return {**found, "kernel_kind": kind, "cmdline": guestfiles.KERNEL_ARGS}


def _disk(work: Path, vmlinuz: Path, initrd: Path, output: Path) -> None:
    raw = work / "disk.raw"
    with open(raw, "wb") as fh:
        fh.truncate(DISK_MB << 20)
    run(["sfdisk", "-q", str(raw)], input=f"start={PART_START}, type=c, bootable\n".encode())
    part_kib = (DISK_MB << 10) - PART_START // 2
    run(["mkfs.vfat", "-F", "32", f"--offset={PART_START}", "-n", "NIMBUS", str(raw),
         str(part_kib)])
    cfg = work / "syslinux.cfg"
    cfg.write_text(guestfiles.SYSLINUX_CFG)
    shutil.copyfile(vmlinuz, work / "vmlinuz")
    os.environ.setdefault("MTOOLS_SKIP_CHECK", "1")
    image = f"{raw}@@{PART_START * 512}"
    run(["mcopy", "-i", image, str(work / "vmlinuz"), str(initrd), str(cfg), "::/"])
    run(["syslinux", "--offset", str(PART_START * 512), "--install", str(raw)])
    mbr = MBR_BIN.read_bytes()[:440]
    with open(raw, "r+b") as fh:
        fh.write(mbr)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Not *.qcow2 until complete: the image service registers what it finds in guest-images/.
    part = output.with_name(f".{output.name}.part")
    run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(part)])
    part.replace(output)
