"""Debian packages for the guest: resolved with apt-cache, fetched with `apt-get download` into
a cache folder, unpacked with `dpkg-deb -x`. Nothing comes from anywhere but Debian's archive."""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class BuildError(RuntimeError):
    """The guest image could not be built; the message says why and what to install."""


def run(args: list[str], cwd: Path | None = None, input: bytes | None = None) -> str:
    try:
        done = subprocess.run(args, cwd=cwd, input=input, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"{args[0]} is not installed (see deploy/apt-packages.txt)") from exc
    if done.returncode != 0:
        raise BuildError(f"{' '.join(args)} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()[-2000:]}")
    return done.stdout.decode(errors="replace")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str

    @property
    def filename(self) -> str:
        """The file name `apt-get download` gives it (the epoch colon is %3a)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def resolve(names: Iterable[str]) -> list[Package]:
    """The candidate version of each package, from the local apt lists (no download)."""
    wanted = sorted(set(names))
    try:
        text = run(["apt-cache", "show", "--no-all-versions", *wanted])
    except BuildError as exc:
        raise BuildError(f"{exc}\n(run `apt-get update` first?)") from exc
    found = {s["Package"]: Package(s["Package"], s["Version"], s["Architecture"])
             for s in _stanzas(text) if "Package" in s}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise BuildError(f"apt knows no package {', '.join(missing)} (run `apt-get update`?)")
    return [found[n] for n in wanted]


DEPENDS_FLAGS = ["--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                 "--no-replaces", "--no-enhances"]


def _depends_graph(text: str) -> dict[str, list[str]]:
    """`apt-cache depends` output -> package -> its Depends/PreDepends (first alternative)."""
    graph: dict[str, list[str]] = {}
    current: list[str] | None = None
    alternative = False
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = graph.setdefault(line.strip(), [])
            alternative = False
            continue
        stripped = line.strip()
        key, _, dep = stripped.lstrip("|").partition(":")
        dep = dep.strip()
        if current is None or key not in ("Depends", "PreDepends") or not dep:
            continue
        if not alternative and not dep.startswith("<"):
            current.append(dep.split(":")[0])
        alternative = stripped.startswith("|")  # the next line is another choice for it
    return graph


def closure(graph: dict[str, list[str]], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, [])
    return sorted(seen)


@dataclass(frozen=True)
class Recipe:
    kernel: str  # the versioned kernel package
    ssh: list[str]  # the SSH server package and what it needs to run
    packages: list[Package]  # every package to fetch, with its version


def lists_stamp(lists: Path = Path("/var/lib/apt/lists")) -> str:
    """Changes whenever `apt-get update` changed what apt knows."""
    try:
        found = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                       for p in lists.iterdir() if p.is_file() and p.name != "lock")
    except OSError:
        return ""
    return hashlib.sha256(json.dumps(found).encode()).hexdigest()


def resolve_recipe(cache: Path, kernel_meta: str, ssh_server: str,
                   userland: tuple[str, ...]) -> Recipe:
    """What to fetch, from the local apt lists (two apt-cache calls, no download); remembered
    in `cache` until the lists change, so an up-to-date check costs nothing."""
    memo = cache / "recipe.json"
    stamp = lists_stamp()
    ask = [kernel_meta, ssh_server, *userland]
    try:
        saved = json.loads(memo.read_text())
        if stamp and saved["stamp"] == stamp and saved["ask"] == ask:
            return Recipe(saved["kernel"], saved["ssh"],
                          [Package(*p) for p in saved["packages"]])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    graph = _depends_graph(run(["apt-cache", "depends", "--recurse", *DEPENDS_FLAGS,
                                kernel_meta, ssh_server]))
    kernel = next((d for d in graph.get(kernel_meta, []) if d.startswith("linux-image-")), None)
    if kernel is None:
        raise BuildError(f"apt knows no {kernel_meta} depending on a linux-image-* package "
                         "(run `apt-get update`?)")
    ssh = closure(graph, [ssh_server])
    packages = resolve([kernel, *userland, *ssh])
    recipe = Recipe(kernel, ssh, packages)
    if stamp:
        cache.mkdir(parents=True, exist_ok=True)
        memo.write_text(json.dumps({"stamp": stamp, "ask": ask, "kernel": kernel, "ssh": ssh,
                                    "packages": [[p.name, p.version, p.arch]
                                                 for p in packages]}))
    return recipe


class DebCache:
    """A folder of downloaded .debs, shared between builds (and test runs)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def fetch(self, packages: list[Package]) -> list[Path]:
        """The .deb of each package, downloading only those not cached yet."""
        missing = [p for p in packages if not (self.folder / p.filename).is_file()]
        if missing:
            run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                 *[f"{p.name}={p.version}" for p in missing]], cwd=self.folder)
            for pkg in missing:
                if not (self.folder / pkg.filename).is_file():
                    raise BuildError(f"apt-get download gave no {pkg.filename}")
                for old in self.folder.glob(f"{pkg.name}_*.deb"):
                    if old.name != pkg.filename:
                        old.unlink()
        return [self.folder / p.filename for p in packages]


def extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(dest)])
