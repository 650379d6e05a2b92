"""``alsseg demo``: a synthetic cohort generated, run end to end, and compared with its ground
truth (the only part of the pipeline that uses :mod:`alsseg.synth`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from alsseg.io.atomic import write_text_atomic
from alsseg.pipeline.cohort import run_cohort
from alsseg.pipeline.group import collect_tables, load_group_results, run_report, run_stats
from alsseg.pipeline.layout import GROUP_DIR
from alsseg.pipeline.options import PipelineOptions
from alsseg.pipeline.session import shipped_model_available


def compare_with_truth(muscles, truth):
    """Per-muscle agreement of measured and true values (synthetic data).

    Parameters
    ----------
    muscles : table from :func:`collect_tables` (per-muscle rows are used, group rows ignored).
    truth : ground truth (``derivatives/groundtruth/muscles.tsv``: participant_id, session_id,
        side, muscle, volume_ml, t2_water_ms, fat_fraction, t1_ms).

    Returns
    -------
    (rows, summary): ``rows`` one line per session × side × muscle with ``<m>_est``, ``<m>_true``
    and errors (``t2_error_ms``, ``volume_error_pct``, ``ff_error``, ``t1_error_ms``); ``summary``
    one line per muscle plus ``all`` with the median absolute errors.
    """
    import pandas as pd

    keys = ["participant_id", "session_id", "side", "muscle"]
    est = muscles[muscles["muscle"].isin(truth["muscle"].unique())].copy()
    for d in (est, truth):
        for k in keys:
            d[k] = d[k].astype(str)
    cols = [c for c in ("volume_ml", "t2_water_ms", "fat_fraction", "t1_ms") if c in est and c in truth]
    m = est[keys + cols].merge(truth[keys + cols], on=keys, suffixes=("_est", "_true"))
    if "t2_water_ms" in cols:
        m["t2_error_ms"] = m["t2_water_ms_est"] - m["t2_water_ms_true"]
    if "volume_ml" in cols:
        m["volume_error_pct"] = 100 * (m["volume_ml_est"] - m["volume_ml_true"]) / m["volume_ml_true"]
    if "fat_fraction" in cols:
        m["ff_error"] = m["fat_fraction_est"] - m["fat_fraction_true"]
    if "t1_ms" in cols:
        m["t1_error_ms"] = m["t1_ms_est"] - m["t1_ms_true"]
    errs = [c for c in ("t2_error_ms", "volume_error_pct", "ff_error", "t1_error_ms") if c in m]
    summ = []
    for name, part in list(m.groupby("muscle", sort=False)) + [("all", m)]:
        row = {"muscle": name, "n": len(part)}
        for e in errs:
            v = part[e].abs()
            row[f"median_abs_{e}"] = float(v.median()) if v.notna().any() else float("nan")
        summ.append(row)
    return m, pd.DataFrame(summ)


def compare_stats(est: dict, truth: dict):
    """Side-by-side of the key statistics computed on measured and on true values.

    Returns a DataFrame: analysis, measure, motor, muscle, statistic, measured, truth,
    difference, same_sign, both_significant (p < 0.05 in both or in neither).
    """
    import pandas as pd

    rows = []
    specs = [("group_comparison", ["measure", "muscle"], [("hedges_g", "welch_p")]),
             ("motor_correlation", ["population", "measure", "motor", "muscle"], [("pearson_r", "pearson_p"),
                                                                                 ("spearman_r", "spearman_p")]),
             ("change_correlation", ["measure", "motor", "muscle"], [("pearson_r", "pearson_p")])]
    for name, keys, stats_ in specs:
        if name not in est or name not in truth:
            continue
        m = est[name].merge(truth[name], on=keys, suffixes=("_est", "_true"))
        for _, r in m.iterrows():
            for s, p in stats_:
                a, b = r[f"{s}_est"], r[f"{s}_true"]
                pa, pb = r[f"{p}_est"], r[f"{p}_true"]
                rows.append({"analysis": name, **{k: r[k] for k in keys}, "statistic": s, "measured": a,
                             "truth": b, "difference": a - b, "same_sign": bool(np.sign(a) == np.sign(b)),
                             "p_measured": pa, "p_truth": pb,
                             "same_significance": bool((pa < 0.05) == (pb < 0.05))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DemoResult:
    """Paths and headline numbers of :func:`run_demo`."""

    bids_root: Path
    out_dir: Path
    report: Path
    segmentation: str
    accuracy: object   # DataFrame: per-muscle median absolute errors
    findings: object   # DataFrame: key statistics, measured vs truth
    seconds: dict


def key_findings(tables: dict):
    """The study's headline analyses (Bryan et al. 1998) from a stats result, one row each."""
    import pandas as pd

    rows = []
    gc = tables.get("group_comparison")
    mc = tables.get("motor_correlation")
    cc = tables.get("change_correlation")
    if gc is not None:
        for meas in ("t2_water_ms", "t1_ms", "volume_ml", "fat_fraction"):
            r = gc[(gc["measure"] == meas) & (gc["muscle"] == "all")]
            if len(r):
                r = r.iloc[0]
                rows.append({"finding": f"{meas}: ALS vs control (all muscles)", "statistic": "hedges_g",
                             "value": r["hedges_g"], "p": r["welch_p"]})
    if mc is not None:
        for meas, mot in (("t2_water_ms", "mvic_n"), ("t2_water_ms", "cmap_mv"), ("volume_ml", "mvic_n")):
            r = mc[(mc["measure"] == meas) & (mc["motor"] == mot) & (mc["muscle"] == "anterior") & (mc["population"] == "all")]
            if len(r):
                r = r.iloc[0]
                rows.append({"finding": f"{meas} vs {mot} (anterior)", "statistic": "pearson_r",
                             "value": r["pearson_r"], "p": r["pearson_p"]})
    if cc is not None:
        for mot in ("cmap_mv", "mvic_n"):
            r = cc[(cc["measure"] == "t2_water_ms") & (cc["motor"] == mot) & (cc["muscle"] == "anterior")]
            if len(r):
                r = r.iloc[0]
                rows.append({"finding": f"ΔT2 vs Δ{mot} (anterior, ALS)", "statistic": "pearson_r",
                             "value": r["pearson_r"], "p": r["pearson_p"]})
    return pd.DataFrame(rows, columns=["finding", "statistic", "value", "p"])


def simulated_slice_profile(bids_root: str | Path) -> tuple[float, float] | None:
    """``(refocus_width_ratio, transition)`` of a synthetic cohort's MESE protocol when its
    ``derivatives/groundtruth/cohort.json`` records one, else ``None`` (relax's default)."""
    f = Path(bids_root) / "derivatives" / "groundtruth" / "cohort.json"
    if not f.is_file():
        return None
    cfg = json.loads(f.read_text()).get("mese", {})
    if "refocus_width_ratio" not in cfg:
        return None
    return float(cfg["refocus_width_ratio"]), float(cfg.get("slice_transition", 0.12))


def run_demo(out: str | Path, *, n_als: int = 11, n_controls: int = 8, seed: int = 0, jobs: int = 1,
             model: str = "lowerleg-unet", use_truth_labels: bool = False, quiet: bool = False,
             options: PipelineOptions | None = None, config=None) -> DemoResult:
    """Generate the default synthetic cohort and run everything on it.

    ``out/bids`` — the synthetic BIDS dataset (with ``derivatives/groundtruth``);
    ``out/bids/derivatives/alsseg`` — alsseg's outputs, with ``group/report.html``, the statistics,
    and the comparison with the ground truth (``group/accuracy_*.tsv``, ``group/stats_truth_*.tsv``,
    ``group/stats_vs_truth.tsv``, ``group/findings.tsv``). Resumable: a second call finishes what
    an interrupted one left.

    Segmentation: the shipped model ``model`` when it is in ``models/``; the ground-truth label
    maps when ``use_truth_labels`` or when no model ships (said in the result).
    ``config``: a full :class:`alsseg.synth.cohort.CohortConfig` (overrides the group sizes and
    seed; e.g. a coarse grid for tests).
    """
    import pandas as pd

    from alsseg import stats
    from alsseg.synth import cohort as synth_cohort

    out = Path(out)
    times = {}
    t = time.perf_counter()
    bids = out / "bids"
    synth_cohort.make_cohort(bids, n_als=n_als, n_controls=n_controls, seed=seed, config=config,
                             progress=not quiet)
    times["synth"] = time.perf_counter() - t
    base = options or PipelineOptions()
    if base.slice_profile is None:
        # the simulated protocol's slice profile is known exactly: fit with it (on real data a
        # user gives their sequence's, or relax's default applies)
        base = replace(base, slice_profile=simulated_slice_profile(bids))
    if use_truth_labels or not shipped_model_available(model):
        opts = replace(base, labels_from="groundtruth", model=model)
        seg = "ground-truth label maps" + ("" if use_truth_labels else f" (no model {model!r} in models/)")
    else:
        opts = replace(base, model=model, labels_from=None)
        seg = f"model {model}"
    deriv = bids / "derivatives" / "alsseg"
    t = time.perf_counter()
    run_cohort(bids, deriv, opts, jobs=jobs, quiet=quiet)
    times["cohort"] = time.perf_counter() - t
    t = time.perf_counter()
    if load_group_results(deriv) is None:
        run_stats(deriv, bids)
    times["stats"] = time.perf_counter() - t
    # ground truth: accuracy of the per-muscle values, and the same statistics on true values
    t = time.perf_counter()
    group = deriv / GROUP_DIR
    truth = pd.read_csv(bids / "derivatives" / "groundtruth" / "muscles.tsv", sep="\t", na_values="n/a",
                        dtype={"participant_id": str, "session_id": str})
    muscles, _ = collect_tables(deriv)
    rows, summary = compare_with_truth(muscles, truth)
    write_text_atomic(group / "accuracy_muscles.tsv", rows.to_csv(sep="\t", index=False, float_format="%.6g"))
    write_text_atomic(group / "accuracy_summary.tsv", summary.to_csv(sep="\t", index=False, float_format="%.6g"))
    from alsseg.io.bids import BidsDataset

    ds = BidsDataset(bids)
    est_tables = {k: pd.read_csv(group / f"stats_{k}.tsv", sep="\t", na_values="n/a")
                  for k in ("group_comparison", "motor_correlation", "change_correlation")
                  if (group / f"stats_{k}.tsv").is_file()}
    # the comparison uses the subject-level statistics; mixed models would only cost time here
    truth_tables = stats.run_all(truth, ds.participants, ds.motor, stats.StatsOptions(mixed_model=False))
    stats.write_tables({f"truth_{k}": v for k, v in truth_tables.items()}, group)
    agree = compare_stats(est_tables, truth_tables)
    write_text_atomic(group / "stats_vs_truth.tsv", agree.to_csv(sep="\t", index=False, float_format="%.6g"))
    fm, ft = key_findings(est_tables), key_findings(truth_tables)
    findings = fm.merge(ft, on=["finding", "statistic"], suffixes=("_measured", "_truth"), how="outer")
    write_text_atomic(group / "findings.tsv", findings.to_csv(sep="\t", index=False, float_format="%.6g"))
    times["truth"] = time.perf_counter() - t
    t = time.perf_counter()
    extra = {"Accuracy against the ground truth (median absolute error per muscle, all sessions)": summary,
             "Headline analyses, measured vs computed on the true values": findings}
    report = run_report(deriv, bids, title=f"alsseg demo — synthetic cohort (seed {seed}), segmentation: {seg}",
                        extra=extra)
    times["report"] = time.perf_counter() - t
    return DemoResult(bids, deriv, report, seg, summary, findings, times)
