"""Rule 1 of ARCHITECTURE.md: a service never imports another service's internals."""

from __future__ import annotations

import ast
from pathlib import Path

import nimbus

SERVICES = {"identity", "placement", "image", "compute", "network", "volume", "object",
            "dashboard"}
ROOT = Path(nimbus.__file__).parent


def cross_service_imports(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or parts[0] not in SERVICES:
            continue
        own = parts[0]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                bits = name.split(".")
                if len(bits) > 1 and bits[0] == "nimbus" and bits[1] in SERVICES \
                        and bits[1] != own:
                    found.append(f"{path.relative_to(root)}: imports {name}")
    return found


def test_no_service_imports_another_services_internals() -> None:
    assert cross_service_imports(ROOT) == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    (tmp_path / "compute").mkdir()
    (tmp_path / "compute" / "api.py").write_text("from nimbus.identity.models import User\n")
    (tmp_path / "identity").mkdir()
    (tmp_path / "identity" / "ok.py").write_text("from nimbus.identity import models\n")
    assert cross_service_imports(tmp_path) == [
        "compute/api.py: imports nimbus.identity.models"]
