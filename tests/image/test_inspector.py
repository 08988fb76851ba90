"""The format inspector on crafted images: detection, virtual size, safety, and the verdict
that decides whether an upload is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimbus.image.inspector import InspectionFailed, inspect_file, verdict
from tests.image import samples

MiB = samples.MiB


def inspect_bytes(tmp_path: Path, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / "disk"
    path.write_bytes(data)
    return inspect_file(path)


@pytest.mark.parametrize(("data", "fmt", "vsize"), [
    (samples.raw(10000, b"\x01"), "raw", 10000),
    (samples.qcow2(64 * MiB), "qcow2", 64 * MiB),
    (samples.qcow2(1 << 40, version=2), "qcow2", 1 << 40),
    (samples.vmdk(32 * MiB), "vmdk", 32 * MiB),
    (samples.vmdk(32 * MiB, create_type="streamOptimized"), "vmdk", 32 * MiB),
    (samples.vhd(16 * MiB), "vhd", 16 * MiB),
    (samples.vhdx(48 * MiB), "vhdx", 48 * MiB),
    (samples.vdi(24 * MiB), "vdi", 24 * MiB),
    (samples.iso(40), "iso", 40 * 2048),
    (samples.gpt_disk(), "raw", 64 * 1024),
])
def test_detects_format_and_virtual_size(tmp_path: Path, data: bytes, fmt: str,
                                         vsize: int) -> None:
    insp = inspect_bytes(tmp_path, data)
    assert insp.format == fmt
    assert insp.unsafe is None
    assert insp.virtual_size == vsize


def test_gpt_is_raw_with_a_partition_table(tmp_path: Path) -> None:
    assert inspect_bytes(tmp_path, samples.gpt_disk()).partition_table == "gpt"


@pytest.mark.parametrize(("data", "reason"), [
    (samples.qcow2(backing_file="/etc/passwd"), "backing file"),
    (samples.qcow2(incompatible=1 << 2), "external data file"),
    (samples.qcow2(incompatible=1 << 9), "unknown incompatible features"),
    (samples.qcow2(version=1), "unsupported qcow2 version"),
    (samples.vmdk(extent='"/dev/sda"'), "file path"),
    (samples.vmdk(create_type="twoGbMaxExtentSparse"), "not allowed"),
    (samples.vmdk_descriptor_only(), "descriptor without data"),
    (b"QED\x00" + b"\x00" * 4096, "qed"),
    (b"LUKS\xba\xbe" + b"\x00" * 4096, "luks"),
    (samples.polyglot_qcow2_iso(), "several formats"),
])
def test_unsafe_images(tmp_path: Path, data: bytes, reason: str) -> None:
    insp = inspect_bytes(tmp_path, data)
    assert insp.unsafe is not None and reason in insp.unsafe
    with pytest.raises(InspectionFailed, match="failed format inspection"):
        verdict(insp, insp.format, "bare", require_match=False)


def test_verdict_matrix(tmp_path: Path) -> None:
    qcow = inspect_bytes(tmp_path, samples.qcow2(64 * MiB))
    rand = inspect_bytes(tmp_path, samples.raw(5000, b"\x07"))
    iso = inspect_bytes(tmp_path, samples.iso())
    assert verdict(qcow, "qcow2", "bare", require_match=True) == 64 * MiB
    # a qcow2 that claims to be raw is how backing-file attacks get in
    with pytest.raises(InspectionFailed, match="does not match"):
        verdict(qcow, "raw", "bare", require_match=False)
    with pytest.raises(InspectionFailed, match="does not match"):
        verdict(qcow, "vmdk", "bare", require_match=False)
    assert verdict(rand, "raw", "bare", require_match=True) == 5000
    with pytest.raises(InspectionFailed, match="does not match"):
        verdict(rand, "qcow2", "bare", require_match=True)
    assert verdict(rand, "qcow2", "bare", require_match=False) is None
    assert verdict(rand, "ami", "ami", require_match=True) is None
    assert verdict(rand, "aki", "bare", require_match=True) is None
    assert verdict(iso, "iso", "bare", require_match=True) == 40 * 2048
    assert verdict(iso, "raw", "bare", require_match=True) == iso.size
    # a wrapped disk is not compared, but an unsafe one is still refused
    assert verdict(qcow, "vmdk", "ova", require_match=True) is None
    bad = inspect_bytes(tmp_path, samples.qcow2(backing_file="x"))
    with pytest.raises(InspectionFailed):
        verdict(bad, "qcow2", "ova", require_match=False)


def test_truncated_and_empty_files(tmp_path: Path) -> None:
    assert inspect_bytes(tmp_path, b"").format == "raw"
    short = inspect_bytes(tmp_path, b"QFI\xfb\x00\x00")
    assert short.format == "qcow2" and short.unsafe
    vhdx = inspect_bytes(tmp_path, b"vhdxfile" + b"\x00" * 100)
    assert vhdx.format == "vhdx" and vhdx.unsafe
