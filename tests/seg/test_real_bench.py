"""Real-data benchmark: Dice with ignore label / unscored muscles, plausibility checks, and the
benchmark on the shared real scans with the shipped bundle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from alsseg.io import Image
from alsseg.labels import load_anatomy
from alsseg.seg.evaluate import pool_dice, slice_dice_rows
from alsseg.seg.plausibility import CHECKS, check_plausibility

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
ANAT = load_anatomy()


# ----------------------------------------------------------------------------- Dice rules
def test_slice_dice_ignore_unscored_and_absent_rules():
    aff = np.diag([1.0, 1.0, 5.0, 1.0])
    gt = np.zeros((20, 10, 2), np.uint8)
    pred = np.zeros_like(gt)
    gt[0:4, 0:5, 0] = 1          # TA_R: 20 px
    pred[0:4, 0:5, 0] = 1
    pred[4:6, 0:5, 0] = 1        # 10 px extra TA, of which 5 sit on ignored truth
    gt[4, 0:5, 0] = 255
    gt[10:14, 0:5, 0] = 4        # TP_R in the truth and in the prediction: never scored
    pred[10:14, 0:5, 0] = 14
    pred[15:17, 0:5, 0] = 5      # SOL_R predicted, not in the truth: Dice 0
    gt[0:2, 0:2, 1] = 255        # slice 1: only ignored pixels and nothing else
    pred[0:2, 0:2, 1] = 11       # predicted only on ignored pixels: removed, no row
    rows = slice_dice_rows(Image(pred, aff), Image(gt, aff), ANAT, case="c", unscored=("TP",))
    by = {(r["slice"], r["muscle"], r["side"]): r for r in rows}
    assert set(by) == {(0, "TA", "R"), (0, "SOL", "R")}
    ta = by[(0, "TA", "R")]
    assert (ta["n_pred"], ta["n_true"], ta["n_both"], ta["n_ignored"]) == (25, 20, 20, 5)
    assert ta["dice"] == pytest.approx(round(2 * 20 / 45, 4))
    assert by[(0, "SOL", "R")]["dice"] == 0.0 and by[(0, "SOL", "R")]["n_true"] == 0
    # TP scored where it is not declared unscored
    rows_tp = slice_dice_rows(Image(pred, aff), Image(gt, aff), ANAT)
    assert {(r["muscle"], r["side"]) for r in rows_tp} >= {("TP", "R"), ("TP", "L")}


def test_pool_dice_mean_and_summed():
    rows = [{"muscle": "TA", "dice": 1.0, "n_pred": 10, "n_true": 10, "n_both": 10},
            {"muscle": "TA", "dice": 0.0, "n_pred": 0, "n_true": 30, "n_both": 0}]
    p = pool_dice(rows, ["TA", "EDL"])
    assert p["TA"]["mean"] == 0.5 and p["TA"]["summed"] == pytest.approx(20 / 50) and p["TA"]["n"] == 2
    assert p["TA"]["min"] == 0.0 and p["EDL"]["n"] == 0 and np.isnan(p["EDL"]["mean"])


def test_paired_difference_of_two_models():
    """Model B minus model A over the cases both scored: mean, a bootstrap interval around it that
    shrinks to the mean when every case moves alike, and the better / worse counts."""
    from alsseg.seg.realdata import paired_difference

    def rows(dice):
        return [{"case": c, "muscle": m, "side": "R", "dice": d} for (c, m), d in dice.items()]

    a = {("s1", "TA"): 0.8, ("s1", "EDL"): 0.6, ("s2", "TA"): 0.7, ("s2", "EDL"): 0.5}
    same_shift = paired_difference(rows(a), rows({k: v + 0.1 for k, v in a.items()}))
    assert same_shift["n"] == 4 and same_shift["mean"] == pytest.approx(0.1)
    assert same_shift["lo"] == pytest.approx(0.1) and same_shift["hi"] == pytest.approx(0.1)
    assert (same_shift["better"], same_shift["worse"]) == (4, 0)
    b = {("s1", "TA"): 0.9, ("s1", "EDL"): 0.4, ("s2", "TA"): 0.702, ("s3", "TA"): 0.9}  # s3 only in B
    mixed = paired_difference(rows(a), rows(b))
    assert mixed["n"] == 3 and mixed["mean"] == pytest.approx((0.1 - 0.2 + 0.002) / 3)
    assert mixed["lo"] < mixed["mean"] < mixed["hi"]
    assert (mixed["better"], mixed["worse"]) == (1, 1)  # 0.002 is a tie
    with pytest.raises(ValueError, match="no case"):
        paired_difference(rows(a), rows({("s9", "TA"): 0.5}))


def test_pooled_confusion_counts_where_outlined_pixels_went():
    """Both legs pooled, side-agnostic; a muscle never outlined is NaN."""
    from alsseg.labels import load_anatomy
    from alsseg.seg.realdata import pooled_confusion

    an = load_anatomy()
    ta_r, ta_l, edl_r = an.label_id("TA", "R"), an.label_id("TA", "L"), an.label_id("EDL", "R")
    truth = np.zeros((4, 4, 1), np.int16)
    truth[0, :, 0] = ta_r  # 4 px right TA
    truth[1, :, 0] = ta_l  # 4 px left TA
    truth[2, :2, 0] = 255  # ignored (the ignore id is accepted)
    pred = np.zeros((4, 4, 1), np.int16)
    pred[0, :, 0] = ta_r  # right TA all found
    pred[1, :2, 0] = edl_r  # half the left TA called EDL (the other leg's id: pooled side-agnostically),
    #                          the other half background
    pred[2, :2, 0] = ta_r  # predicted inside the ignored region
    img = Image(np.zeros((4, 4, 1), np.float32), np.eye(4))
    cols, frac = pooled_confusion({"s": (img, img.with_data(truth), img.with_data(pred))}, an)
    assert cols[:3] == ["bg", "TA", "EDL"] and frac.shape == (an.n_muscles, an.n_muscles + 1)
    assert (frac[0, 0], frac[0, 1], frac[0, 2]) == pytest.approx((2 / 8, 4 / 8, 2 / 8))  # TA: bg, TA, EDL
    assert np.isnan(frac[1]).all()  # EDL never outlined


def test_slice_dice_refuses_unknown_ids():
    from alsseg.io.errors import InputError

    aff = np.eye(4)
    with pytest.raises(InputError, match="label table"):
        slice_dice_rows(Image(np.full((3, 3, 1), 255, np.uint8), aff), Image(np.zeros((3, 3, 1), np.uint8), aff))


# ----------------------------------------------------------------------------- plausibility
SEEDS_UV = {"TA": (-4, 30), "EDL": (14, 26), "PER": (31, 4), "TP": (6, 8), "SOL": (0, -14), "GM": (-18, -32),
            "GL": (17, -32)}  # (lateral, anterior) mm from the leg centre


def geometric_legs(spacing=1.5, shape=(200, 100, 4)):
    """``(image, labels)`` of two schematic calves on a RAS grid (midline x = 0): a fat ring
    (7 mm) around a muscle envelope split among the 7 muscles by nearest anatomical seed
    point, tibia and fibula carved out; fat bright, with mild coil shading and noise."""
    X, Y, Z = shape
    aff = np.diag([spacing, spacing, 10.0, 1.0])
    aff[:3, 3] = [-(X - 1) * spacing / 2, -(Y - 1) * spacing / 2, 0]
    x = (np.arange(X) - (X - 1) / 2) * spacing
    y = (np.arange(Y) - (Y - 1) / 2) * spacing
    xx, yy = np.meshgrid(x, y, indexing="ij")
    img = np.full((X, Y), 5.0)
    lab = np.zeros((X, Y), np.uint8)
    for side, cx, lat in (("R", 70.0, 1.0), ("L", -70.0, -1.0)):
        u, v = (xx - cx) * lat, yy
        body = (u / 45) ** 2 + (v / 50) ** 2 < 1
        env = (u / 38) ** 2 + (v / 43) ** 2 < 1
        tibia = (u + 16) ** 2 + (v - 20) ** 2 < 9 ** 2
        fibula = (u - 24) ** 2 + (v - 14) ** 2 < 5 ** 2
        img[body] = 300.0
        img[env] = 100.0
        img[tibia | fibula] = 10.0
        img[((u + 16) ** 2 + (v - 20) ** 2 < 6 ** 2) | ((u - 24) ** 2 + (v - 14) ** 2 < 3 ** 2)] = 280.0
        d = np.stack([(u - su) ** 2 + (v - sv) ** 2 for su, sv in SEEDS_UV.values()])
        nearest = np.argmin(d, axis=0)
        muscle = env & ~tibia & ~fibula
        for k, name in enumerate(SEEDS_UV):
            lab[muscle & (nearest == k)] = ANAT.label_id(name, side)
    rng = np.random.default_rng(0)
    img = img * (1.0 + 0.3 * (xx - xx.min()) / np.ptp(xx))  # coil shading
    img3 = np.repeat(img[:, :, None], Z, 2) + rng.normal(0, 3.0, (X, Y, Z))
    return Image(np.abs(img3).astype(np.float32), aff), Image(np.repeat(lab[:, :, None], Z, 2), aff)


def _verdicts(image, labels):
    return {(r["leg"], r["check"]): r["passed"] for r in check_plausibility(image, labels, ANAT)}


def test_geometric_legs_pass_every_check():
    image, labels = geometric_legs()
    v = _verdicts(image, labels)
    assert set(v) == {(s, c) for s in ("R", "L") for c in CHECKS}
    assert all(v.values()), [k for k, ok in v.items() if not ok]


def _relabel(labels: Image, mapping: dict[int, int]) -> Image:
    d = labels.data.copy()
    out = d.copy()
    for a, b in mapping.items():
        out[d == a] = b
    return labels.with_data(out)


def test_each_check_fails_on_a_broken_map():
    image, labels = geometric_legs()
    lid = ANAT.label_id
    d = labels.data
    # TA/EDL ids swapped in the right leg
    v = _verdicts(image, _relabel(labels, {lid("TA", "R"): lid("EDL", "R"), lid("EDL", "R"): lid("TA", "R")}))
    assert not v[("R", "ta_gt_edl")] and v[("L", "ta_gt_edl")]
    # left leg's labels mirrored medial-lateral about the leg centre (x = -70 mm: voxel 53)
    X = d.shape[0]
    cx = int(round((-70.0 - labels.affine[0, 3]) / labels.affine[0, 0]))
    mirrored = d.copy()
    left = np.isin(d, [lab.id for lab in ANAT.labels if lab.side == "L"])
    mirrored[left] = 0
    src = np.argwhere(left)
    mirrored[2 * cx - src[:, 0], src[:, 1], src[:, 2]] = d[left]
    assert (2 * cx - src[:, 0]).min() >= 0 and (2 * cx - src[:, 0]).max() < X
    v = _verdicts(image, labels.with_data(mirrored))
    assert not v[("L", "gm_medial_gl")] and not v[("L", "per_lateral")] and v[("R", "gm_medial_gl")]
    # TP and SOL swapped: TP posterior to SOL
    v = _verdicts(image, _relabel(labels, {lid("TP", "L"): lid("SOL", "L"), lid("SOL", "L"): lid("TP", "L")}))
    assert not v[("L", "tp_deep")] and v[("R", "tp_deep")]
    # a label painted into the posterior subcutaneous fat of the right leg
    painted = d.copy()
    x = labels.affine[0, 3] + np.arange(X) * labels.affine[0, 0]
    y = labels.affine[1, 3] + np.arange(d.shape[1]) * labels.affine[1, 1]
    xx, yy = np.meshgrid(x - 70.0, y, indexing="ij")
    ring = ((xx / 45) ** 2 + (yy / 50) ** 2 < 0.97) & ((xx / 38) ** 2 + (yy / 43) ** 2 > 1.25) & (yy < 0)
    painted[ring] = lid("GM", "R")
    v = _verdicts(image, labels.with_data(painted))
    assert not v[("R", "not_in_fat")] and v[("L", "not_in_fat")]
    # a second TA piece inside SOL (right leg)
    split = d.copy()
    split[((xx ** 2 + (yy + 14) ** 2 < 6 ** 2)[:, :, None]) & (d == lid("SOL", "R"))] = lid("TA", "R")
    v = _verdicts(image, labels.with_data(split))
    assert not v[("R", "one_component")] and v[("L", "one_component")]
    # legs' sides swapped (right labels on the left leg and vice versa)
    swap = {lab.id: lid(lab.abbrev, "L" if lab.side == "R" else "R") for lab in ANAT.labels}
    v = _verdicts(image, _relabel(labels, swap))
    assert not v[("R", "side")] and not v[("L", "side")] and v[("R", "gm_medial_gl")]


def test_checks_do_not_depend_on_voxel_order():
    image, labels = geometric_legs()
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = image.shape[0] - 1
    lps_aff = image.affine @ flip
    img2 = Image(image.data[::-1].copy(), lps_aff)
    lab2 = Image(labels.data[::-1].copy(), lps_aff)
    a = check_plausibility(image, labels, ANAT)
    b = check_plausibility(img2, lab2, ANAT)
    assert [(r["leg"], r["check"], r["passed"]) for r in a] == [(r["leg"], r["check"], r["passed"]) for r in b]
    assert [r["value"] for r in a] == pytest.approx([r["value"] for r in b], abs=1e-6)


def test_overlay_png(tmp_path):
    from alsseg.seg.overlay import overlay_png

    image, labels = geometric_legs()
    png = overlay_png(image, labels, [0, 2], "test: anterior up", ANAT)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# ----------------------------------------------------------------------------- shared real data
@pytest.mark.shared
@pytest.mark.slow
def test_real_benchmark_with_shipped_bundle(tmp_path, capsys):
    if not (SHARED / "real-calf-slices").is_dir() or not (SHARED / "mese-leg-3t").is_dir():
        pytest.skip("../shared/data real scans are not present")
    from alsseg.io import load_nifti
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.realdata import REAL_SLICES, load_real_volume, score_real_slices, volume_plausibility

    seg = Segmenter.from_bundle("lowerleg-unet")
    rows = score_real_slices(seg, SHARED / "real-calf-slices")
    # 3 slices x 2 legs x 6 outlined muscles (a label the model misses still scores 0)
    assert len(rows) == 36
    assert {r["muscle"] for r in rows} == {"TA", "EDL", "PER", "SOL", "GM", "GL"}
    assert all(0.0 <= r["dice"] <= 1.0 for r in rows)
    for name in REAL_SLICES:
        truth = load_nifti(SHARED / "real-calf-slices" / f"{name}_dseg.nii.gz", dtype=None).data
        n255 = int((truth == 255).sum())
        assert {r["n_ignored"] for r in rows if r["case"] == name} == {n255}
        for r in (r for r in rows if r["case"] == name):
            assert r["n_true"] == int((truth == r["label"]).sum())  # truth never loses a pixel but 255s
    assert np.mean([r["dice"] for r in rows]) > 0.4  # a working model, not a measure of it
    image = load_real_volume(SHARED, "mese-leg-3t")
    assert image.data.ndim == 3 and image.shape == (256, 128, 8)
    labels, plaus = volume_plausibility(seg, image, "mese-leg-3t")
    assert [(r["leg"], r["check"]) for r in plaus] == [(s, c) for s in ("R", "L") for c in CHECKS]
    assert all(r["passed"] for r in plaus if r["check"] == "side")
    # the script: thin wrapper, slices only here; one TSV row per case
    spec = importlib.util.spec_from_file_location("bench_seg_real", REPO / "benchmarks" / "bench_seg_real.py")
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert mod.main(["--out", str(tmp_path), "--skip-volumes", "--threads", "1", "--without-mirror-tta"]) == 0
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    text = capsys.readouterr().out
    assert "| **mean of 6** |" in text and "machine:" in text
    # --without-mirror-tta: the model once more without test-time augmentation, paired against it
    assert "| lowerleg-unet no-tta | 36 |" in text
    tsv = (tmp_path / "real_slices_dice.tsv").read_text().splitlines()
    assert len(tsv) == 1 + 2 * 36 and tsv[0].startswith("model\tcase\tslice\tlabel\tmuscle\tside\tdice")
