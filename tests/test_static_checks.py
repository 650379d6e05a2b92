"""The house held by machines: ruff and mypy clean on alsseg/ (their configuration is in
pyproject.toml, their pinned versions in the test extra), and no module over 500 lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 500


def _tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(exe).exists():
        pytest.skip(f"{name} is not installed (it comes with the test extra: pip install -e '.[test]')")
    return exe


def test_ruff_is_clean():
    res = subprocess.run([_tool("ruff"), "check", "--no-cache", "alsseg"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, f"ruff check alsseg found problems:\n{res.stdout[-8000:]}{res.stderr[-2000:]}"


@pytest.mark.slow
def test_mypy_is_clean():
    # incremental: mypy's cache (.mypy_cache, keyed on file contents) makes a rerun ~20 s; a first run
    # reads torch's and MONAI's types too (~3 min on a 2-core CPU)
    res = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, f"mypy (packages = alsseg) found problems:\n{res.stdout[-8000:]}{res.stderr[-2000:]}"


def _long_modules(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            out.append(f"{path.relative_to(root.parent)}: {n} lines")
    return out


def test_no_module_over_500_lines():
    long = _long_modules(REPO / "alsseg")
    assert not long, f"split these along their seams (small modules with one job): {long}"


def test_the_size_check_sees_a_long_module(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "short.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    (pkg / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert _long_modules(pkg) == [f"pkg/long.py: {MAX_MODULE_LINES + 1} lines"]


def test_the_lint_check_can_fail(tmp_path):
    """ruff with this repository's configuration reports an unused import in a scratch file."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    res = subprocess.run([_tool("ruff"), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(bad)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "F401" in res.stdout
