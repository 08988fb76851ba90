"""The builder's pieces without QEMU or apt: the cpio writer, the kernel module order, the
reading of `apt-cache depends`, .deb file names, the up-to-date check."""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

import pytest

from nimbus.guestimage import builder, debs, guestfiles, modules
from nimbus.guestimage.cpio import Archive
from nimbus.guestimage.debs import BuildError, Package


def parse_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev) for a cpio newc archive."""
    out = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701", pos
        fields = [int(data[pos + 6 + i * 8:pos + 14 + i * 8], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = data[pos:pos + namesize - 1].decode()
        pos += namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body, (fields[9], fields[10]))


def test_cpio_newc(tmp_path: Path) -> None:
    archive = Archive()
    archive.file("etc/init.d/rcS", "#!/bin/sh\n", 0o755)
    archive.symlink("init", "/bin/busybox")
    archive.chardev("dev/console", 5, 1)
    archive.dir("home/cirros", 0o700)
    dest = tmp_path / "initrd.gz"
    archive.write_gzip(dest)
    entries = parse_newc(gzip.decompress(dest.read_bytes()))
    names = list(entries)
    assert names == sorted(names)
    assert names.index("etc") < names.index("etc/init.d") < names.index("etc/init.d/rcS")
    mode, body, _ = entries["etc/init.d/rcS"]
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o755 and body == b"#!/bin/sh\n"
    mode, body, _ = entries["init"]
    assert stat.S_ISLNK(mode) and body == b"/bin/busybox"
    mode, _, rdev = entries["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert stat.S_IMODE(entries["home/cirros"][0]) == 0o700
    archive.write_gzip(tmp_path / "again.gz")
    assert (tmp_path / "again.gz").read_bytes() == dest.read_bytes()  # reproducible


def _ko(folder: Path, name: str, depends: str) -> None:
    path = folder / "kernel" / f"{name}.ko"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF junk\x00license=GPL\x00depends=" + depends.encode()
                     + b"\x00vermagic=6.1\x00")


def test_module_order_puts_dependencies_first(tmp_path: Path) -> None:
    _ko(tmp_path, "virtio_ring", "")
    _ko(tmp_path, "virtio", "")
    _ko(tmp_path, "virtio_pci", "virtio_ring,virtio")
    _ko(tmp_path, "virtio_net", "virtio_ring,virtio,net_failover")
    _ko(tmp_path, "net_failover", "failover")
    _ko(tmp_path, "failover", "")
    _ko(tmp_path, "virtio-rng", "virtio_ring,virtio")
    index = modules.index(tmp_path)
    order = [modules._name(p) for p in modules.load_order(
        index, ("virtio_pci", "virtio_net", "virtio-rng"))]
    assert order == ["virtio_ring", "virtio", "virtio_pci", "failover", "net_failover",
                     "virtio_net", "virtio_rng"]
    with pytest.raises(BuildError, match="nope not found"):
        modules.load_order(index, ("nope",))
    _ko(tmp_path, "a", "b")
    _ko(tmp_path, "b", "a")
    with pytest.raises(BuildError, match="cycle"):
        modules.load_order(modules.index(tmp_path), ("a",))


def test_apt_cache_depends_output_is_read_with_first_alternatives() -> None:
    text = """dropbear-bin
  Depends: libc6
  Depends: libtomcrypt1
linux-image-cloud-amd64
  Depends: linux-image-6.1.0-56-cloud-amd64
libc6
  Depends: libgcc-s1
libtomcrypt1
  Depends: libc6
  Depends: libgmp10
linux-image-6.1.0-56-cloud-amd64
 |Depends: initramfs-tools
  Depends: <linux-initramfs-tool>
    dracut
    initramfs-tools
libgcc-s1
  Depends: gcc-12-base
"""
    graph = debs._depends_graph(text)
    assert graph["linux-image-6.1.0-56-cloud-amd64"] == ["initramfs-tools"]
    assert debs.closure(graph, ["dropbear-bin"]) == [
        "dropbear-bin", "gcc-12-base", "libc6", "libgcc-s1", "libgmp10", "libtomcrypt1"]


def test_deb_file_names_follow_apt() -> None:
    assert Package("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64").filename == \
        "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"


def test_guest_files_are_shell_scripts_with_the_console_markers() -> None:
    for path, (mode, text) in guestfiles.FILES.items():
        if mode & 0o111:
            assert text.startswith("#!/bin/sh\n"), path
    rcs = guestfiles.FILES["etc/init.d/rcS"][1]
    assert "-O staticroutes -O mtu" in rcs
    assert "timeout 5 wget" in rcs and "wget -T" not in rcs.replace("`wget -T` crashes", "")
    assert 'say "ready: ssh cirros@' in rcs
    script = guestfiles.FILES["usr/share/udhcpc/default.script"][1]
    assert script.index('event="$1"') < script.index("set -- $staticroutes")


def test_up_to_date_needs_the_same_key_and_size(tmp_path: Path) -> None:
    out = tmp_path / "x.qcow2"
    assert builder.read_manifest(out) is None
    builder.manifest_path(out).write_text("not json")
    assert builder.read_manifest(out) is None
    pkgs = [Package("a", "1", "amd64")]
    assert builder.recipe_key(pkgs) != builder.recipe_key([Package("a", "2", "amd64")])
    assert builder.recipe_key(pkgs) == builder.recipe_key(list(pkgs))
