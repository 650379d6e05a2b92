"""benchmarks/bench_seg_fewshot_real.py --members rejoin: leave-one-out on the real slices with the
product's own train --init and export --rejoin path (two iterations per fold, so it only checks
the plumbing: three folds, each scored before and after with a three-member bundle)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLICES = REPO.parent / "shared" / "data" / "real-calf-slices"


@pytest.mark.slow
def test_bench_fewshot_rejoin_scores_every_fold(tmp_path, capsys):
    if not SLICES.is_dir():
        pytest.skip("../shared/data/real-calf-slices is not present")
    spec = importlib.util.spec_from_file_location("bench_seg_fewshot_real",
                                                  REPO / "benchmarks" / "bench_seg_fewshot_real.py")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert mod.main(["--members", "rejoin", "--iterations", "2", "--threads", "1",
                         "--work", str(tmp_path / "work")]) == 0
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    out = capsys.readouterr().out
    assert "put back into the ensemble (alsseg export --rejoin)" in out
    rows = json.loads((tmp_path / "work" / "fewshot_dice.json").read_text())
    assert len(rows["before"]) == len(rows["after"]) == 36  # 6 muscles x 2 legs x 3 held-out slices
    for held in ("t1w_a", "t1w_b", "pd"):
        meta = json.loads((tmp_path / "work" / f"bundle_{held}_rejoined" / "configs" / "metadata.json").read_text())
        assert len(meta["alsseg"]["members"]) == 3
        assert meta["alsseg"]["rejoined"]["replaced_member"] == 0
    assert sum(ln.startswith(("| t1w_a |", "| t1w_b |", "| pd |")) for ln in out.splitlines()) == 3
