"""Knowledge flows one way: each package may import only the layers below it.

dsl/ builds the logical graph and compiles it; topology/ holds the compiled specs;
processors/ run records; runtime/ runs a compiled topology without knowing the DSL;
state/, windows/ and time/ know nothing of what runs them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "streamer"

#: package -> packages of streamer it must never import (type-checking imports included)
FORBIDDEN = {
    "state": {"runtime", "dsl", "topology", "processors", "testing", "windows", "time", "cli"},
    "time": {"runtime", "dsl", "topology", "processors", "testing", "state", "windows", "cli"},
    "windows": {"runtime", "dsl", "topology", "processors", "testing", "cli"},
    "processors": {"runtime", "dsl", "topology", "testing", "cli"},
    "topology": {"runtime", "dsl", "testing", "cli"},
    "dsl": {"runtime", "testing", "cli", "devbroker"},
    "runtime": {"dsl", "testing", "cli"},
    "testing": {"dsl", "cli"},
    "devbroker": {"runtime", "dsl", "topology", "processors", "testing", "state", "windows", "time"},
}


def _imports(path: Path) -> set[str]:
    """The streamer sub-packages a module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "streamer" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_layers_below(package: str) -> None:
    broken = {
        str(path.relative_to(ROOT.parent)): sorted(_imports(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) & FORBIDDEN[package]
    }
    assert not broken, f"{package}/ imports layers above it: {broken}"
