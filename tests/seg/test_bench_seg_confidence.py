"""benchmarks/bench_seg_confidence.py (does per-muscle confidence predict failure?): end to end on
one synthetic subject; the printed Spearman rho is the one of the rows it writes."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def test_bench_seg_confidence_rho_matches_its_rows(tmp_path, capsys):
    from scipy.stats import spearmanr

    spec = importlib.util.spec_from_file_location("bench_seg_confidence", REPO / "benchmarks" / "bench_seg_confidence.py")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert mod.main(["--subjects", "1", "--contrasts", "t1w,dixon_water", "--threads", "1",
                         "--data", str(tmp_path / "no-real-data"), "--tsv", str(tmp_path / "rows.tsv")]) == 0
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    out = capsys.readouterr().out
    assert "lowerleg-unet 0.8.0, mirror TTA: Spearman rho" in out  # the shipped default
    lines = (tmp_path / "rows.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, ln.split("\t"))) for ln in lines[1:]]
    assert len(rows) >= 20 and {r["set"] for r in rows} == {"synthetic"}  # no real data given: none scored
    dice = np.array([float(r["dice"]) for r in rows])
    conf = np.array([float(r["seg_confidence"]) for r in rows])
    assert ((conf >= 0) & (conf <= 1)).all()
    table = [ln for ln in out.splitlines() if ln.startswith("| synthetic |")]
    assert len(table) == 1
    cells = [c.strip() for c in table[0].split("|")[1:-1]]
    assert int(cells[1]) == len(rows)
    assert float(cells[3]) == round(spearmanr(conf, dice)[0], 3)
