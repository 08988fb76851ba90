"""The kernel file for direct boot: the ELF vmlinux inside a bzImage when it can be taken out.

A bzImage decompresses itself before Linux starts; under TCG that is about a quarter of a
second of emulated work on every boot. QEMU boots an uncompressed vmlinux whose ELF notes
carry a PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY) directly, so the builder ships that when
the payload's compression is one it can undo (gzip and xz with the standard library, lz4 and
zstd with their command-line tools) and the ELF has the note; otherwise the bzImage itself.
"""

from __future__ import annotations

import lzma
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

# bzImage setup header fields (Documentation/arch/x86/boot.rst)
SETUP_SECTS = 0x1F1
HEADER_MAGIC = 0x202
PAYLOAD_OFFSET = 0x248
PVH_NOTE_TYPE = 18  # XEN_ELFNOTE_PHYS32_ENTRY
ELF_MAGIC = b"\x7fELF"


def _payload(bzimage: bytes) -> bytes | None:
    if len(bzimage) < 0x250 or bzimage[HEADER_MAGIC:HEADER_MAGIC + 4] != b"HdrS":
        return None
    setup = (bzimage[SETUP_SECTS] or 4) + 1
    offset, length = struct.unpack_from("<II", bzimage, PAYLOAD_OFFSET)
    start = setup * 512 + offset
    return bzimage[start:start + length] if length else None


def _with_tool(tool: str, args: list[str], data: bytes) -> bytes | None:
    if shutil.which(tool) is None:
        return None
    done = subprocess.run([tool, *args], input=data, capture_output=True, check=False)
    # The payload may carry trailing bytes (the decompressed size): tools that complain
    # about them still wrote the whole ELF.
    return done.stdout or None


def _decompress(payload: bytes) -> bytes | None:
    if payload.startswith(b"\x1f\x8b"):
        # One gzip member; the bytes after it (the kernel appends its size) are left alone.
        try:
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
        except zlib.error:
            return None
    if payload.startswith(b"\xfd7zXZ"):
        try:
            return lzma.LZMADecompressor().decompress(payload)
        except lzma.LZMAError:
            return None
    if payload.startswith(b"\x02\x21\x4c\x18"):  # lz4 legacy frame (lz4 -l)
        return _with_tool("lz4", ["-dc"], payload)
    if payload.startswith(b"\x28\xb5\x2f\xfd"):
        return _with_tool("zstd", ["-dc"], payload)
    return None


def has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has the PVH entry note QEMU's -kernel needs."""
    if not elf.startswith(ELF_MAGIC) or len(elf) < 64 or elf[4] != 2 or elf[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    for i in range(phnum):
        base = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", elf, base)
        if p_type != 4:  # PT_NOTE
            continue
        offset, = struct.unpack_from("<Q", elf, base + 8)
        size, = struct.unpack_from("<Q", elf, base + 32)
        pos, end = offset, offset + size
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", elf, pos)
            name = elf[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == PVH_NOTE_TYPE:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


def direct_boot_kernel(bzimage: Path, output: Path) -> str:
    """Write the kernel to hand QEMU's -kernel to `output`; returns what it is:
    "pvh-elf" (the uncompressed vmlinux) or "bzimage" (a copy of the original)."""
    data = bzimage.read_bytes()
    payload = _payload(data)
    elf = _decompress(payload) if payload else None
    if elf is not None and has_pvh_entry(elf):
        output.write_bytes(elf)
        return "pvh-elf"
    output.write_bytes(data)
    return "bzimage"
