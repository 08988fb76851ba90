"""Disk image format inspection, in pure Python.

What the uploaded bytes really are (qcow2, vmdk, vhd, vhdx, vdi, iso, qed, luks, or raw with
maybe a gpt/mbr partition table), their virtual size, and whether they are safe to give to QEMU:
a qcow2 must not name a backing file or an external data file, nor use features we do not know;
a vmdk must be a single self-contained sparse extent; qed is banned; a file that looks like two
formats at once (a polyglot) is refused. Reads only a few small regions of a finished file, so
it costs the same for a 4 KiB image and a 40 GiB one.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass

# Formats whose headers we recognise (besides raw).
RICH = ("qcow2", "qed", "vhdx", "vhd", "vmdk", "vdi", "luks")
# disk_formats with nothing to inspect: their data is taken as it comes.
OPAQUE = ("aki", "ari", "ami", "ploop")

QCOW2_MAGIC = b"QFI\xfb"
QCOW2_INCOMPAT_DATA_FILE = 1 << 2
QCOW2_INCOMPAT_KNOWN = 0b11111  # dirty, corrupt, external data file, compression, extended L2
VMDK_GD_AT_END = 0xFFFFFFFFFFFFFFFF
VMDK_DESC_MAX = 64 * 1024
VMDK_SAFE_TYPES = ("monolithicsparse", "streamoptimized")
VHDX_REGION_TABLE = 192 * 1024
VHDX_METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
VHDX_VIRTUAL_DISK_SIZE_GUID = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
ISO_DESCRIPTOR = 32 * 1024


@dataclass
class Inspection:
    format: str  # "raw" when nothing richer was recognised
    virtual_size: int | None
    size: int
    unsafe: str | None = None  # why QEMU must not see this image
    partition_table: str | None = None  # "gpt" or "mbr" inside a raw image


class InspectionFailed(Exception):
    """The data does not match its disk_format, or is unsafe; the image is killed."""


class _Reader:
    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset >= self.size or length <= 0:
            return b""
        return os.pread(self.fd, min(length, self.size - offset), offset)


def inspect_file(path: str | os.PathLike[str]) -> Inspection:
    """Blocking: run it in a thread."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        return inspect(_Reader(fd, size))
    finally:
        os.close(fd)


def inspect(r: _Reader) -> Inspection:
    head = r.read(0, 512)
    found: list[Inspection] = []
    for probe in (_qcow2, _qed, _vhdx, _vhd, _vmdk, _vdi, _luks, _iso):
        result = probe(r, head)
        if result is not None:
            found.append(result)
    if len(found) > 1:
        names = "+".join(i.format for i in found)
        return Inspection(found[0].format, None, r.size,
                          unsafe=f"the data matches several formats at once ({names})")
    table = _partition_table(head)
    if found:
        found[0].partition_table = table
        return found[0]
    return Inspection("raw", r.size, r.size, partition_table=table)


# -- probes: each returns None when the bytes are not its format -------------------------------
def _qcow2(r: _Reader, head: bytes) -> Inspection | None:
    if not head.startswith(QCOW2_MAGIC):
        return None
    if len(head) < 72:
        return Inspection("qcow2", None, r.size, unsafe="truncated qcow2 header")
    version, bf_offset, _bf_size, _cluster_bits, vsize = struct.unpack(">IQIIQ", head[4:32])
    insp = Inspection("qcow2", vsize, r.size)
    if version not in (2, 3):
        insp.unsafe = f"unsupported qcow2 version {version}"
    elif bf_offset != 0:
        insp.unsafe = "the qcow2 image has a backing file"
    elif version == 3:
        if len(head) < 104:
            insp.unsafe = "truncated qcow2 v3 header"
        else:
            (incompat,) = struct.unpack(">Q", head[72:80])
            if incompat & QCOW2_INCOMPAT_DATA_FILE:
                insp.unsafe = "the qcow2 image has an external data file"
            elif incompat & ~QCOW2_INCOMPAT_KNOWN:
                insp.unsafe = "the qcow2 image uses unknown incompatible features"
    return insp


def _qed(r: _Reader, head: bytes) -> Inspection | None:
    if not head.startswith(b"QED\x00"):
        return None
    return Inspection("qed", None, r.size, unsafe="the qed format is not supported")


def _luks(r: _Reader, head: bytes) -> Inspection | None:
    if not head.startswith(b"LUKS\xba\xbe"):
        return None
    return Inspection("luks", None, r.size, unsafe="encrypted (luks) images are not supported")


def _vhd(r: _Reader, head: bytes) -> Inspection | None:
    if not head.startswith(b"conectix"):
        return None
    if len(head) < 56:
        return Inspection("vhd", None, r.size, unsafe="truncated vhd footer")
    (current_size,) = struct.unpack(">Q", head[48:56])
    return Inspection("vhd", current_size, r.size)


def _vdi(r: _Reader, head: bytes) -> Inspection | None:
    if len(head) < 0x178 or struct.unpack("<I", head[0x40:0x44])[0] != 0xBEDA107F:
        return None
    (vsize,) = struct.unpack("<Q", head[0x170:0x178])
    return Inspection("vdi", vsize, r.size)


def _iso(r: _Reader, head: bytes) -> Inspection | None:
    desc = r.read(ISO_DESCRIPTOR, 2048)
    if len(desc) < 136 or desc[1:6] not in (b"CD001", b"NSR02", b"NSR03"):
        return None
    vsize = None
    if desc[0] == 1:  # primary volume descriptor
        (blocks,) = struct.unpack("<I", desc[80:84])
        (block_size,) = struct.unpack("<H", desc[128:130])
        vsize = blocks * block_size
    return Inspection("iso", vsize, r.size)


def _vhdx(r: _Reader, head: bytes) -> Inspection | None:
    if not head.startswith(b"vhdxfile"):
        return None
    insp = Inspection("vhdx", None, r.size)
    table = r.read(VHDX_REGION_TABLE, 64 * 1024)
    if len(table) < 16 or table[:4] != b"regi":
        insp.unsafe = "vhdx region table not found"
        return insp
    (count,) = struct.unpack("<I", table[8:12])
    if count > 2047:
        insp.unsafe = "vhdx region table is too large"
        return insp
    meta_offset = None
    for i in range(count):
        entry = table[16 + i * 32: 48 + i * 32]
        if len(entry) < 32:
            break
        if entry[:16] == VHDX_METADATA_GUID:
            (meta_offset,) = struct.unpack("<Q", entry[16:24])
            break
    if meta_offset is None:
        insp.unsafe = "vhdx metadata region not found"
        return insp
    meta = r.read(meta_offset, 32 * 2048)
    if len(meta) < 32 or meta[:8] != b"metadata":
        insp.unsafe = "vhdx metadata table not found"
        return insp
    (entries,) = struct.unpack("<H", meta[10:12])
    for i in range(min(entries, 2047)):
        entry = meta[32 + i * 32: 64 + i * 32]
        if len(entry) < 32:
            break
        if entry[:16] == VHDX_VIRTUAL_DISK_SIZE_GUID:
            (item_offset,) = struct.unpack("<I", entry[16:20])
            raw = r.read(meta_offset + item_offset, 8)
            if len(raw) == 8:
                insp.virtual_size = struct.unpack("<Q", raw)[0]
            return insp
    insp.unsafe = "vhdx virtual disk size not found"
    return insp


def _vmdk(r: _Reader, head: bytes) -> Inspection | None:
    if head.startswith(b"KDMV"):
        return _vmdk_sparse(r, head)
    # A text-only descriptor: its extents are other files, which is exactly the problem.
    text = r.read(0, VMDK_DESC_MAX)
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    if 'createtype="' not in decoded.lower() or not all(
            c.isprintable() or c.isspace() for c in decoded):
        return None
    return Inspection("vmdk", None, r.size,
                      unsafe="a vmdk descriptor without data (its extents are other files)")


def _vmdk_sparse(r: _Reader, head: bytes) -> Inspection:
    insp = Inspection("vmdk", None, r.size)
    if len(head) < 64:
        insp.unsafe = "truncated vmdk header"
        return insp
    version, _flags, capacity, _grain, desc_sec, desc_num = struct.unpack(
        "<IIQQQQ", head[4:44])
    (gd_offset,) = struct.unpack("<Q", head[56:64])
    if version not in (1, 2, 3):
        insp.unsafe = f"unsupported vmdk version {version}"
        return insp
    if desc_sec != 1 or desc_num == 0:
        insp.unsafe = "the vmdk descriptor is not where a single-file vmdk keeps it"
        return insp
    desc = r.read(512, min(desc_num * 512, VMDK_DESC_MAX)).split(b"\x00", 1)[0]
    problem = _vmdk_descriptor_problem(desc)
    if problem is None and gd_offset == VMDK_GD_AT_END:
        problem = _vmdk_footer_problem(r, head)
    insp.unsafe = problem
    if problem is None:
        insp.virtual_size = capacity * 512
    return insp


def _vmdk_descriptor_problem(desc: bytes) -> str | None:
    try:
        text = desc.decode("ascii").lower()
    except UnicodeDecodeError:
        return "the vmdk descriptor is not ASCII text"
    create_type = None
    extents = 0
    for line in (x.strip() for x in text.split("\n")):
        if not line or line.startswith("#") or line.startswith("ddb"):
            continue
        first = line.split(" ", 1)[0]
        if first in ("rw", "rdonly", "noaccess"):
            if "/" in line:
                return "a vmdk extent names a file path"
            extents += 1
        elif "=" in line and " " not in line.split("=", 1)[0]:
            key, _, value = line.partition("=")
            if key == "createtype":
                create_type = value.strip().strip('"')
        else:
            return "the vmdk descriptor holds a line we do not understand"
    if create_type not in VMDK_SAFE_TYPES:
        return f"vmdk subformat {create_type!r} is not allowed (only {', '.join(VMDK_SAFE_TYPES)})"
    if extents != 1:
        return "a vmdk must have exactly one extent, in the same file"
    return None


def _vmdk_footer_problem(r: _Reader, head: bytes) -> str | None:
    """streamOptimized: the grain directory is given by a footer 1.5 KiB before the end."""
    tail = r.read(r.size - 1536, 1536) if r.size >= 2048 else b""
    if len(tail) != 1536:
        return "the vmdk footer is missing"
    footer = tail[512:1024]
    if footer[:8] != head[:8] or footer[28:44] != head[28:44]:
        return "the vmdk footer does not agree with its header"
    if struct.unpack("<Q", footer[56:64])[0] == VMDK_GD_AT_END:
        return "the vmdk footer points at another footer"
    _, size, kind = struct.unpack("<QII", tail[:16])
    _, eos_size, eos_kind = struct.unpack("<QII", tail[1024:1040])
    if size != 0 or kind != 3 or eos_size != 0 or eos_kind != 0:
        return "the vmdk footer markers are invalid"
    return None


def _partition_table(head: bytes) -> str | None:
    if len(head) < 512 or head[510:512] != b"\x55\xaa":
        return None
    return "gpt" if head[446 + 4] == 0xEE else "mbr"


# -- the verdict -----------------------------------------------------------------------------
def verdict(insp: Inspection, disk_format: str | None, container_format: str | None, *,
            require_match: bool) -> int | None:
    """The virtual size to record, or InspectionFailed.

    Unsafe images are refused whatever they claim to be. A recognised format must be the
    declared one (a qcow2 uploaded as "raw" is refused: that is how backing-file attacks get
    in). Data with no recognisable header is refused for an inspectable disk_format unless
    require_match is off."""
    if insp.unsafe:
        raise InspectionFailed(f"Image failed format inspection: {insp.unsafe}.")
    if container_format not in (None, "bare"):
        # ova/ovf/docker/compressed wrap the disk: nothing more to compare.
        return None
    detected = insp.format
    if detected == disk_format:
        return insp.virtual_size
    mismatch = InspectionFailed(
        f"Image disk_format {disk_format} does not match the uploaded data, which is "
        f"{detected}.")
    if detected in RICH:
        raise mismatch
    if disk_format in OPAQUE:
        return None
    if detected == "iso" and disk_format == "raw":
        return insp.size
    if detected == "raw":
        if disk_format == "raw":
            return insp.size
        if require_match:
            raise mismatch
        return None
    raise mismatch
