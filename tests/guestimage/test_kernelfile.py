"""The direct-boot kernel taken out of a bzImage (nimbus/guestimage/kernelfile.py)."""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

import pytest

from nimbus.guestimage import kernelfile


def elf_with_notes(notes: list[tuple[bytes, int]]) -> bytes:
    """A minimal 64-bit little-endian ELF with one PT_NOTE segment holding `notes`."""
    body = b""
    for name, ntype in notes:
        padded = name + b"\0" * (4 - len(name) % 4)
        body += struct.pack("<III", len(name) + 1, 4, ntype) + padded + b"\0\0\0\1"
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, 1)  # e_phentsize, e_phnum
    phdr = bytearray(56)
    struct.pack_into("<I", phdr, 0, 4)  # PT_NOTE
    struct.pack_into("<Q", phdr, 8, 64 + 56)  # p_offset
    struct.pack_into("<Q", phdr, 32, len(body))  # p_filesz
    return bytes(header) + bytes(phdr) + body


def bzimage(payload: bytes) -> bytes:
    setup_sects = 3
    data = bytearray((setup_sects + 1) * 512)
    data[0x1F1] = setup_sects
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", data, 0x248, 16, len(payload))
    return bytes(data) + b"\0" * 16 + payload + struct.pack("<I", 12345)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress])
def test_a_pvh_kernel_comes_out_uncompressed(tmp_path: Path, compress: object) -> None:
    elf = elf_with_notes([(b"GNU", 3), (b"Xen", kernelfile.PVH_NOTE_TYPE)])
    source = tmp_path / "vmlinuz"
    source.write_bytes(bzimage(compress(elf)))  # type: ignore[operator]
    out = tmp_path / "kernel"
    assert kernelfile.direct_boot_kernel(source, out) == "pvh-elf"
    assert out.read_bytes() == elf


def test_a_kernel_without_the_pvh_note_stays_a_bzimage(tmp_path: Path) -> None:
    source = tmp_path / "vmlinuz"
    source.write_bytes(bzimage(gzip.compress(elf_with_notes([(b"Xen", 5)]))))
    out = tmp_path / "kernel"
    assert kernelfile.direct_boot_kernel(source, out) == "bzimage"
    assert out.read_bytes() == source.read_bytes()


def test_something_that_is_no_bzimage_is_copied(tmp_path: Path) -> None:
    source = tmp_path / "vmlinuz"
    source.write_bytes(b"not a kernel" * 100)
    out = tmp_path / "kernel"
    assert kernelfile.direct_boot_kernel(source, out) == "bzimage"
    assert out.read_bytes() == source.read_bytes()
