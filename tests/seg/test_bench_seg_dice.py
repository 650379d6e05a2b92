"""benchmarks/bench_seg_dice.py, the synthetic held-out benchmark: runs end to end on one subject,
with and without mirror test-time augmentation, and writes its per-label rows."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flag, says", [([], "with mirror TTA:"), (["--no-mirror-tta"], "without mirror TTA:"),
                                        (["--no-slice-smoothing"], "with mirror TTA, no slice smoothing:")])
def test_bench_seg_dice_runs(tmp_path, capsys, flag, says):
    spec = importlib.util.spec_from_file_location("bench_seg_dice", REPO / "benchmarks" / "bench_seg_dice.py")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert mod.main(["--subjects", "1", "--contrasts", "t1w", *flag, "--threads", "1",
                         "--tsv", str(tmp_path / "rows.tsv")]) == 0
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    out = capsys.readouterr().out
    assert f"lowerleg-unet {says} Dice on 1 held-out" in out and "| t1w |" in out
    rows = (tmp_path / "rows.tsv").read_text().splitlines()
    assert rows[0].startswith("seed\tcontrast") and len(rows) == 1 + 14  # 7 muscles x 2 legs
