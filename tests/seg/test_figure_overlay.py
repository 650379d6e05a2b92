"""training/figure_overlay.py: the model card's overlay and its label table on the real scan."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "training" / "figure_overlay.py"


@pytest.mark.shared
def test_overlay_and_compare_table(shared_mese, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("figure_overlay", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "overlay.png"
    assert mod.main(["--scan", str(shared_mese), "--out", str(out), "--compare", "lowerleg-unet"]) == 0
    assert out.stat().st_size > 10_000
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and "_" in ln.split("|")[1]]
    assert len(rows) == 14  # both legs, 7 muscles: all found on the real scan
    for ln in rows:  # the bundle against itself: equal volumes, Dice 1
        _, name, vol, other, dice, _ = [c.strip() for c in ln.split("|")]
        assert vol == other and float(vol) > 0 and dice == "1.000", ln
