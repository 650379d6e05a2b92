"""The benchmark and training scripts import only names alsseg still has (they are not run by
the suite, so a rename inside the package would otherwise break them silently)."""

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*REPO.glob("benchmarks/*.py"), *REPO.glob("training/*.py")])


def _alsseg_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "alsseg":
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "alsseg":
                    yield alias.name, None


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_imports_resolve(script):
    missing = []
    for module, name in _alsseg_imports(script):
        mod = importlib.import_module(module)
        if name is not None and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{script.name} imports names alsseg does not have: {missing}"


def test_the_check_catches_a_missing_name(tmp_path):
    f = tmp_path / "s.py"
    f.write_text("def main():\n    from alsseg.cases import _synth_api\n")
    with pytest.raises(AssertionError, match="_synth_api"):
        test_script_imports_resolve(f)
