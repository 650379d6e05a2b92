"""training/figure_failures.py: the model card's failure-mode figure, panels chosen by rule."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "training" / "figure_failures.py"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.shared
@pytest.mark.slow
def test_failure_figure_shows_the_three_worst_real_cases(tmp_path, capsys):
    if not all((SHARED / d).is_dir() for d in ("real-calf-slices", "mese-leg-3t", "gre-calf-3d")):
        pytest.skip("../shared/data real scans are not present")
    spec = importlib.util.spec_from_file_location("figure_failures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out, slices = tmp_path / "failures.png", tmp_path / "slices.png"
    assert mod.main(["--data", str(SHARED), "--out", str(out), "--slices-out", str(slices)]) == 0
    for png in (out, slices):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    worst = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("worst real-slice case:")]
    dice = [float(ln.rsplit(" ", 1)[1]) for ln in worst]
    assert len(dice) == 3 and dice == sorted(dice) and all(0.0 <= d < 1.0 for d in dice)
