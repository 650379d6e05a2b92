"""``alsseg --help`` and the non-torch verbs must not import torch (or numpy for --help)."""

import subprocess
import sys


def _imported_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(sorted(m for m in "
                          "('torch', 'monai', 'numpy', 'nibabel') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return eval(out)


def test_help_imports_no_numerical_library():
    code = ("from alsseg.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert _imported_after(code) == []


def test_packages_export_lazily():
    assert _imported_after("import alsseg.io, alsseg.relax, alsseg.seg") == []
    assert "torch" not in _imported_after("from alsseg.io import load_mese; from alsseg.relax import EpgT2Model")


def test_labels_verb_does_not_import_torch(tmp_path):
    code = f"from alsseg.cli import main; main(['labels', '--out', r'{tmp_path / 'l.tsv'}'])"
    assert "torch" not in _imported_after(code)
