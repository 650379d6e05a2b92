"""Layering held by a machine: the import-linter contracts of pyproject.toml (`lint-imports`), and
what a module-level contract cannot see (relax calls no file writer)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _lint_imports(config: Path | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.fail("lint-imports is missing: install the test extra (pip install -e '.[test]')")
    cmd = [exe, "--no-cache"] + (["--config", str(config)] if config else [])
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    res = _lint_imports()
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "BROKEN" not in res.stdout and " KEPT" in res.stdout
    # every contract of pyproject.toml was checked
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 7 and res.stdout.count(" KEPT") == len(contracts)


def test_a_broken_contract_fails(tmp_path):
    """The check can fail: a contract that the code breaks (cli imports pipeline) is reported."""
    cfg = tmp_path / "contracts.toml"
    cfg.write_text('[tool.importlinter]\nroot_package = "alsseg"\n\n[[tool.importlinter.contracts]]\n'
                   'name = "cli does not import pipeline"\ntype = "forbidden"\n'
                   'source_modules = ["alsseg.cli"]\nforbidden_modules = ["alsseg.pipeline"]\n')
    res = _lint_imports(cfg)
    assert res.returncode != 0 and "BROKEN" in res.stdout and "alsseg.cli" in res.stdout


WRITERS = {"save_nifti", "write_text_atomic", "write_bytes_atomic", "atomic_path", "write_maps", "write_text",
           "write_bytes", "to_csv", "savez", "savez_compressed", "save", "tofile", "mkdir", "rename", "unlink"}


def _writer_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in WRITERS:
                found.append(f"{path.name}:{node.lineno} {name}")
            if name == "open" and any(isinstance(a, ast.Constant) and isinstance(a.value, str) and
                                      set(a.value) & set("wax") for a in node.args[1:2]):
                found.append(f"{path.name}:{node.lineno} open")
    return found


def test_relax_writes_no_files():
    calls = [c for p in sorted((REPO / "alsseg" / "relax").glob("*.py")) for c in _writer_calls(p)]
    assert not calls, f"relax writes files (move the writing to io / pipeline / cli): {calls}"


def test_the_writer_check_sees_a_write(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from alsseg.io import save_nifti\n\ndef g(img, p):\n    save_nifti(img, p)\n    open(p, 'w')\n")
    assert [c.split()[1] for c in _writer_calls(f)] == ["save_nifti", "open"]
