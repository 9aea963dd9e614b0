"""Layering rules: db/, layers/ and app/ are Qt-free; app/ never imports widgets/."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "shiboken6", "pyqtgraph", "superqt")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            if name.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_core_packages_are_qt_free():
    bad = _violations("db", QT) + _violations("layers", QT) + _violations("app", QT)
    assert bad == []


def test_app_does_not_import_widgets():
    assert _violations("app", ("widgets",)) == []


def test_db_and_layers_do_not_import_widgets():
    assert _violations("db", ("widgets",)) + _violations("layers", ("widgets",)) == []


def test_checker_sees_a_violation(tmp_path):
    """The checker itself must catch an import (guards against a vacuous test)."""
    f = tmp_path / "m.py"
    f.write_text("from PySide6.QtCore import QObject\nimport pyqtgraph as pg\n")
    assert {"PySide6.QtCore", "pyqtgraph"} <= _imports(f)
