"""The shipped bundle models/lowerleg-unet: integrity, accuracy floor on a held-out synthetic
subject, and a sane segmentation of the real 3 T scan (skipped when ../shared is absent)."""

import json
from pathlib import Path

import numpy as np
import pytest

from alsseg.seg.bundle import MODELS_DIR, WEIGHTS, sha256_of

BUNDLE = MODELS_DIR / "lowerleg-unet"
pytestmark = pytest.mark.skipif(not (BUNDLE / "configs" / "metadata.json").is_file(),
                                reason="models/lowerleg-unet not exported yet")


def test_bundle_integrity():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    w = BUNDLE / WEIGHTS
    assert w.stat().st_size < 30e6
    assert meta["sha256"][WEIGHTS] == sha256_of(w)
    members = meta["alsseg"].get("members", [WEIGHTS])      # an ensemble lists every weight file
    assert members[0] == WEIGHTS
    for m in members:
        assert meta["sha256"][m] == sha256_of(BUNDLE / m)
    assert meta["version"] in meta["changelog"]
    assert len(meta["label_names"]) == 14
    assert (BUNDLE / "docs" / "README.md").is_file()
    # the recipe that produced the weights is recorded and ships in training/
    recipe = meta["alsseg"]["recipe"]["name"]
    assert recipe.startswith("lowerleg-unet")
    assert (BUNDLE.parents[1] / "training" / f"{recipe}.yaml").is_file()


@pytest.fixture(scope="module")
def segmenter():
    from alsseg.seg.infer import Segmenter

    return Segmenter.from_bundle("lowerleg-unet")


@pytest.mark.parametrize("contrast", ["mese_e1", "t1w"])
def test_heldout_synthetic_subject(segmenter, contrast):
    """A subject drawn with a seed never used in training: Dice floor well under the benchmark."""
    from alsseg.io import Image
    from alsseg.seg.evaluate import evaluate_labels
    from alsseg.cases import synthetic_subject_cases

    case = synthetic_subject_cases(300001, [contrast], grids_per_subject=1)[0]
    rows = evaluate_labels(segmenter.predict(case.image), Image(case.labels, case.image.affine), hd=False)
    dice = {(r["muscle"], r["side"]): r["dice"] for r in rows}
    assert len(dice) == 14  # every muscle of both legs found, on the right side
    assert np.mean(list(dice.values())) > 0.8
    assert min(dice.values()) > 0.5


def test_real_scan(segmenter, shared_mese):
    """The real 3 T MESE (4-D, 8 slices, both calves): echo 1 is segmented; each leg gets most
    muscles; the leg at larger world x (RAS) carries the right-side ids."""
    from alsseg.io.series import load_mese

    mese = load_mese(shared_mese)
    out = segmenter.predict(mese.image)
    assert out.shape == mese.image.shape[:3]
    found = set(np.unique(out.data).tolist()) - {0}
    assert len({i for i in found if i < 10}) >= 5 and len({i for i in found if i > 10}) >= 5
    ijk = np.argwhere(out.data > 0)
    world_x = ijk @ out.affine[0, :3] + out.affine[0, 3]
    lab = out.data[out.data > 0]
    assert world_x[lab < 10].mean() > world_x[lab > 10].mean()
    frac = (out.data > 0).mean()
    assert 0.02 < frac < 0.6


def test_shipped_bundles_found_from_a_source_checkout():
    """Run from the source tree on PYTHONPATH (not installed, as on a lent GPU machine), where no
    ``alsseg.bundles`` package exists: the bundles are still found in the checkout's models/."""
    import site
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path += sys.argv[2:]; "
            "from alsseg.seg.store import MODELS_DIR; import alsseg.pipeline.session as s; "
            "print(MODELS_DIR); print(s.shipped_model_available('lowerleg-unet')); "
            "print('alsseg.bundles' in sys.modules)")
    # -S and site-packages added as plain paths: no .pth file runs, so an editable install's finder
    # cannot map alsseg.bundles, and the checkout's alsseg shadows an installed one
    out = subprocess.run([sys.executable, "-S", "-c", code, str(root), *site.getsitepackages()],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert Path(lines[0]) == root / "models" and lines[1:] == ["True", "False"]
