"""Small disk images crafted byte by byte: the headers QEMU and our inspector read, nothing
more (a few KiB each)."""

from __future__ import annotations

import struct
import uuid

MiB = 1 << 20


def raw(size: int = 8192, fill: bytes = b"\x00") -> bytes:
    return (fill * size)[:size]


def qcow2(virtual_size: int = 64 * MiB, *, version: int = 3, backing_file: str | None = None,
          incompatible: int = 0, size: int = 64 * 1024) -> bytes:
    """A qcow2 header (cluster size 64 KiB), optionally naming a backing file."""
    header_length = 104 if version == 3 else 72
    bf_offset, bf_size = 0, 0
    if backing_file:
        bf_offset, bf_size = header_length + 8, len(backing_file)
    head = struct.pack(">4sIQIIQIIQQIIQ", b"QFI\xfb", version, bf_offset, bf_size, 16,
                       virtual_size, 0, 1, 0x30000, 0x10000, 1, 0, 0)
    if version == 3:
        head += struct.pack(">QQQII", incompatible, 0, 0, 4, header_length)
    head += b"\x00" * 8  # end of header extensions
    if backing_file:
        head += backing_file.encode()
    return head.ljust(size, b"\x00")


def vmdk(virtual_size: int = 64 * MiB, *, create_type: str = "monolithicSparse",
         extent: str = '"disk.vmdk"') -> bytes:
    descriptor = (
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        f'createType="{create_type}"\n\n# Extent description\n'
        f"RW {virtual_size // 512} SPARSE {extent}\n\n"
        '# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\n'
        'ddb.adapterType = "ide"\n').encode()
    desc_sectors = 20
    head = struct.pack("<4sIIQQQQIQQQ", b"KDMV", 1, 3, virtual_size // 512, 128, 1,
                       desc_sectors, 512, 0, 21, 0)
    return head.ljust(512, b"\x00") + descriptor.ljust(desc_sectors * 512, b"\x00") + \
        b"\x00" * 4096


def vmdk_descriptor_only() -> bytes:
    return (b'# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n'
            b'RW 131072 FLAT "/etc/shadow" 0\n')


def vhd(virtual_size: int = 64 * MiB) -> bytes:
    footer = b"conectix" + struct.pack(">IIQI4sI4sQQ", 2, 0x10000, 512, 0, b"qem2", 0x50003,
                                       b"Wi2k", virtual_size, virtual_size)
    return footer.ljust(512, b"\x00") + b"\x00" * 4096


def vhdx(virtual_size: int = 64 * MiB) -> bytes:
    data = bytearray(1 * MiB + 4096)
    data[0:8] = b"vhdxfile"
    meta_offset = 1 * MiB
    region = 192 * 1024
    data[region:region + 16] = b"regi" + struct.pack("<III", 0, 1, 0)
    entry = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le + \
        struct.pack("<QII", meta_offset, 1 * MiB, 1)
    data[region + 16:region + 48] = entry
    data[meta_offset:meta_offset + 32] = b"metadata" + struct.pack("<HH", 0, 1) + b"\x00" * 20
    item = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le + \
        struct.pack("<IIII", 4096, 8, 0, 0)
    data[meta_offset + 32:meta_offset + 64] = item
    data[meta_offset + 4096:meta_offset + 4104] = struct.pack("<Q", virtual_size)
    return bytes(data)


def vdi(virtual_size: int = 64 * MiB) -> bytes:
    head = bytearray(512)
    text = b"<<< Oracle VM VirtualBox Disk Image >>>\n"
    head[0:len(text)] = text
    head[0x40:0x44] = struct.pack("<I", 0xBEDA107F)
    head[0x170:0x178] = struct.pack("<Q", virtual_size)
    return bytes(head) + b"\x00" * 4096


def iso(blocks: int = 40) -> bytes:
    data = bytearray(blocks * 2048)
    pvd = 16 * 2048
    data[pvd] = 1
    data[pvd + 1:pvd + 6] = b"CD001"
    data[pvd + 6] = 1
    data[pvd + 80:pvd + 88] = struct.pack("<I", blocks) + struct.pack(">I", blocks)
    data[pvd + 128:pvd + 132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
    return bytes(data)


def gpt_disk(size: int = 64 * 1024) -> bytes:
    data = bytearray(size)
    data[446 + 4] = 0xEE  # protective MBR partition
    data[510:512] = b"\x55\xaa"
    data[512:520] = b"EFI PART"
    return bytes(data)


def polyglot_qcow2_iso() -> bytes:
    """A qcow2 header at the start and an ISO volume descriptor at 32 KiB."""
    data = bytearray(qcow2(size=40 * 2048))
    data[16 * 2048:16 * 2048 + 6] = b"\x01CD001"
    return bytes(data)
