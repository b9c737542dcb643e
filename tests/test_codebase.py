"""The codebase's own rules, checked with the tests: strict types and the import contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_the_package_type_checks_strictly() -> None:
    """Given the package, when mypy --strict reads it (pyproject's [tool.mypy]), then it
    finds no error."""
    done = _run([sys.executable, "-m", "mypy"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_import_keeps_the_layers() -> None:
    """Given the import contract (pyproject's [tool.importlinter]), when import-linter
    reads the package, then every contract is kept: layers import only downwards, and
    database drivers, cryptography and pyld stay in their one layer."""
    done = _run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
