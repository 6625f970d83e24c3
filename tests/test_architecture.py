"""The shape of the package: the import contract.

The contract is in pyproject.toml (``[tool.importlinter]``) and explained in
docs/architecture.md; ``uv run lint-imports`` checks it by hand.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found is not None, "import-linter is a dev dependency: run `uv sync`"
    return found


def test_the_import_contract_holds() -> None:
    result = subprocess.run(
        [_lint_imports(), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
