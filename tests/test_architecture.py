"""The shape of the package: the import contract and the size of its modules.

The contract is in pyproject.toml (``[tool.importlinter]``) and explained in
docs/architecture.md; ``uv run lint-imports`` checks it by hand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "genesis_trio"
# One job per module keeps them far below this; past it, split the module.
MAX_MODULE_LINES = 500


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


def test_no_module_is_over_500_lines() -> None:
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert "src/genesis_trio/_stream/_connection.py" in sizes  # the walk found the package
    too_long = {path: lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert too_long == {}, "split these modules (one job each): " + ", ".join(
        f"{path} ({lines} lines)" for path, lines in sorted(too_long.items())
    )


def test_the_architecture_page_names_real_modules() -> None:
    """docs/architecture.md maps behaviours to modules: every path it names must exist."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Za-z_][\w/]*(?:\.py|/))`", page))
    assert "_stream/_connection.py" in named
    missing = sorted(
        path for path in named if not (PACKAGE / path).exists() and not (ROOT / path).exists()
    )
    assert missing == [], "docs/architecture.md names modules that moved: " + ", ".join(missing)
