"""A gzip-compressed cpio archive ("newc") for an initramfs, written in Python.

Every entry belongs to root and has mtime 0, so the same inputs give the same bytes; device
nodes (the kernel needs /dev/console before /init runs) need no privileges to make."""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


@dataclass
class _Entry:
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


@dataclass
class Archive:
    entries: dict[str, _Entry] = field(default_factory=dict)

    def _parents(self, path: str) -> None:
        for parent in reversed(PurePosixPath(path).parents):
            name = str(parent)
            if name != "." and name not in self.entries:
                self.entries[name] = _Entry(stat.S_IFDIR | 0o755)

    def _add(self, path: str, entry: _Entry) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = entry

    def dir(self, path: str, mode: int = 0o755) -> None:
        self._add(path, _Entry(stat.S_IFDIR | mode))

    def file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self._add(path, _Entry(stat.S_IFREG | mode, raw))

    def copy(self, path: str, source: Path, mode: int | None = None) -> None:
        """A host file's content (symlinks followed) at `path`."""
        self.file(path, source.read_bytes(),
                  stat.S_IMODE(source.stat().st_mode) if mode is None else mode)

    def symlink(self, path: str, target: str) -> None:
        self._add(path, _Entry(stat.S_IFLNK | 0o777, target.encode()))

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._add(path, _Entry(stat.S_IFCHR | mode, rdev=(major, minor)))

    def __contains__(self, path: str) -> bool:
        return path.strip("/") in self.entries

    def cpio(self) -> bytes:
        out = bytearray()

        def record(ino: int, name: str, entry: _Entry) -> None:
            encoded = name.encode() + b"\0"
            fields = (ino, entry.mode, 0, 0, 2 if stat.S_ISDIR(entry.mode) else 1, 0,
                      len(entry.data), 0, 0, entry.rdev[0], entry.rdev[1], len(encoded), 0)
            out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
            out.extend(b"\0" * (-len(out) % 4))
            out.extend(entry.data)
            out.extend(b"\0" * (-len(out) % 4))

        # Parents before children: sorted paths put "a" before "a/b".
        for ino, name in enumerate(sorted(self.entries), start=1):
            record(ino, name, self.entries[name])
        record(0, "TRAILER!!!", _Entry(0))
        return bytes(out)

    def write_gzip(self, dest: Path, level: int = 6) -> None:
        dest.write_bytes(gzip.compress(self.cpio(), compresslevel=level, mtime=0))
