"""alsseg.report.overlay and the ``alsseg qc`` verb: every slice, names, orientation stated."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from alsseg.cli import main
from alsseg.report import overlay

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "real-calf-slices"


def test_display_orientation():
    # RAS voxel order: x to the subject's right, y to anterior
    a = np.zeros((5, 4))
    a[4, 3] = 1  # right and anterior
    rad = overlay.display(a, "radiological")
    neu = overlay.display(a, "neurological")
    assert rad.shape == (4, 5) and rad[0, 0] == 1  # anterior up, right on the viewer's left
    assert neu[0, 4] == 1  # anterior up, right on the viewer's right
    assert "anterior up" in overlay.orientation_text("radiological")
    assert "right on the image left" in overlay.orientation_text("radiological")
    with pytest.raises(ValueError):
        overlay.display(a, "upside-down")


@pytest.fixture
def captured(monkeypatch):
    figs = []
    monkeypatch.setattr(overlay, "to_png", lambda fig, dpi=90, tight=True: figs.append(fig) or b"\x89PNG fake")
    return figs


def test_every_slice_with_names_legend_and_colour_bar(captured):
    img = np.random.default_rng(0).random((30, 20, 20))
    lab = np.zeros(img.shape, np.int16)
    lab[20:26, 12:18, :] = 1    # TA_R: right (high x) and anterior (high y)
    lab[4:10, 2:8, 3:9] = 15    # SOL_L
    pages = overlay.overlay_pages(img, lab, (1.5, 1.5, 7.0), title="case", confidence={"TA_R": 0.91})
    assert len(pages) == 2 and len(captured) == 2  # 20 slices, 16 a page
    fig = captured[0]
    ax = fig.axes[0]  # one montage: every slice of the page in one image
    titles = [t.get_text() for t in ax.texts if t.get_text().startswith("slice ")]
    assert len(titles) == 16 and titles[0] == "slice 1/20 (lowest)" and titles[1] == "slice 2/20 · 7 mm above slice 1"
    assert len([t for t in captured[1].axes[0].texts if t.get_text().startswith("slice ")]) == 4
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("TA_R") == 16 and texts.count("SOL_L") == 6  # on every slice where the muscle is
    assert texts.count("A") == texts.count("P") == texts.count("R") == texts.count("L") == 16
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "TA_R  tibialis anterior · confidence 0.91" in legend and "SOL_L  soleus" in legend
    assert any(a.get_xlabel() == "image intensity (a.u.)" for a in fig.axes)  # the colour bar
    assert "radiological view: anterior up" in fig._suptitle.get_text()
    # the montage itself: TA_R (right, anterior) is drawn in the upper left of the first panel
    mont = ax.images[0].get_array()
    ta = [t for t in ax.texts if t.get_text() == "TA_R"][0].get_position()
    first = [t for t in ax.texts if t.get_text() == "slice 1/20 (lowest)"][0].get_position()
    assert ta[0] < first[0] and mont.shape[2] == 3


def test_confidence_from_table_is_optional():
    assert overlay.confidence_from_table(pd.DataFrame({"muscle": ["TA"], "side": ["R"]})) == {}
    t = pd.DataFrame({"muscle": ["TA", "SOL"], "side": ["R", "L"], "seg_confidence": [0.9, np.nan]})
    assert overlay.confidence_from_table(t) == {"TA_R": 0.9}


def _write(path, data, affine):
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_qc_verb_writes_pngs_and_refuses_bad_input(tmp_path, capsys):
    lps = np.diag([-1.5, -1.5, 7.0, 1.0])  # stored LPS: the figure must still be RAS-correct
    img = np.random.default_rng(1).random((24, 16, 3)).astype(np.float32)
    lab = np.zeros((24, 16, 3), np.uint8)
    lab[2:8, 2:8] = 1
    ip, lp = _write(tmp_path / "img.nii.gz", img, lps), _write(tmp_path / "lab.nii.gz", lab, lps)
    table = tmp_path / "m.tsv"
    table.write_text("muscle\tside\tseg_confidence\nTA\tR\t0.8\n")
    out = tmp_path / "qc"
    assert main(["qc", str(ip), str(lp), "--out", str(out), "--table", str(table), "--neurological"]) == 0
    png = out / "img_qc.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in capsys.readouterr().out
    # another grid, non-integer labels, a wrong volume: one line, exit 2, nothing written
    other = _write(tmp_path / "other.nii.gz", lab, np.diag([1.5, 1.5, 7.0, 1.0]))
    frac = _write(tmp_path / "frac.nii.gz", lab.astype(np.float32) * 0.5, lps)
    for args, msg in (([str(ip), str(other)], "does not match the image grid"),
                      ([str(ip), str(frac)], "non-integer"),
                      ([str(ip), str(lp), "--volume", "2"], "has 1 volume"),
                      ([str(tmp_path / "none.nii.gz"), str(lp)], "no such file")):
        bad = tmp_path / "bad"
        assert main(["qc", *args, "--out", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("alsseg: error: ") and msg in err and err.count("\n") == 1 and not bad.exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_qc_verb_on_a_real_outlined_slice(tmp_path, captured):
    assert main(["qc", str(SHARED / "pd.nii.gz"), str(SHARED / "pd_dseg.nii.gz"), "--out", str(tmp_path), "-q"]) == 0
    pos = {t.get_text(): t.get_position() for t in captured[0].axes[0].texts}
    # radiological: the right leg on the viewer's left, and within a leg GM lies medial to PER
    assert pos["TA_R"][0] < pos["TA_L"][0]
    assert pos["PER_R"][0] < pos["GM_R"][0] and pos["GM_L"][0] < pos["PER_L"][0]
    # anterior up: TA above SOL
    assert pos["TA_R"][1] < pos["SOL_R"][1]
    assert json.dumps(sorted(pos))  # the names are plain text
