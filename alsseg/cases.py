"""Where labelled cases come from: the synthetic generator (:mod:`alsseg.synth`) or a BIDS
dataset with label maps under ``derivatives/<name>/…_desc-muscles_dseg.nii.gz``.

Both yield :class:`alsseg.io.case.Case` objects (image + side-specific labels, same grid), e.g.
for :func:`alsseg.seg.dataset.write_dataset` (the nnU-Net raw layout). This module sits above
both :mod:`alsseg.seg` and :mod:`alsseg.synth`, so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from alsseg.io.errors import InputError
from alsseg.io.case import Case

#: image kinds a BIDS session offers to the dataset builder.
BIDS_IMAGES = ("mese", "anat")


def bids_cases(root: str | Path, *, image: str = "mese", labels_from: str = "groundtruth",
               desc: str = "muscles", echo_index: int = 0) -> Iterator[Case]:
    """Cases of a BIDS dataset: one per session with a label map.

    Parameters
    ----------
    root : BIDS root.
    image : ``"mese"`` (volume ``echo_index`` of the MESE series) or ``"anat"`` (T1w/T2w/PDw).
    labels_from : derivative folder holding ``sub-X[/ses-Y]/anat/…_desc-<desc>_dseg.nii.gz``.

    Raises
    ------
    InputError
        not a BIDS dataset, no label maps, a label map not on its image's grid.
    """
    from alsseg.io.bids import BidsDataset
    from alsseg.io.nifti import Image, load_nifti

    if image not in BIDS_IMAGES:
        raise InputError(None, f"--image must be one of {', '.join(BIDS_IMAGES)}, got {image!r}")
    ds = BidsDataset(root)
    deriv = Path(root) / "derivatives" / labels_from
    n = 0
    for s in ds.sessions:
        rel = Path(s.subject) / (s.session or "") / "anat"
        lab_path = deriv / rel / f"{s.name}_desc-{desc}_dseg.nii.gz"
        if not lab_path.is_file():
            continue
        if image == "mese":
            if s.mese is None:
                continue
            ser = s.load_mese()
            data = ser.image.data
            if data.ndim == 4:
                if echo_index >= data.shape[3]:
                    raise InputError(s.mese_path(), f"has no echo {echo_index + 1}")
                data = data[..., echo_index]
            img = Image(np.asarray(data, np.float32), ser.image.affine, ser.source)
        else:
            if s.anat is None:
                continue
            img = load_nifti(s.anat, ndim=3)
        lab = load_nifti(lab_path, ndim=3, dtype=None)
        if lab.shape != img.shape or not np.allclose(lab.affine, img.affine, atol=1e-3):
            raise InputError(lab_path, f"label grid {lab.shape} does not match the {image} image grid {img.shape} "
                                       f"of {img.path.name if img.path else s.name}")
        n += 1
        yield Case(f"{s.name}__{image}", img, np.asarray(lab.data), str(lab_path))
    if n == 0:
        raise InputError(deriv, f"no session has a _desc-{desc}_dseg.nii.gz label map")


#: share of training grids that reach past the ankle or the knee (alsseg.synth.leg_ends): real
#: ankle-to-knee scans show the foot and the knee joint, which a phantom of the calf alone never did
P_ENDS = 0.2


def disease_of(seed: int, als_fraction: float) -> str:
    """Deterministic disease state of a synthetic subject seed ("als" for a fraction of seeds)."""
    return "als" if np.random.default_rng([int(seed), 4242]).random() < als_fraction else "healthy"


def synthetic_subject_cases(seed: int, contrasts: Sequence[str], grids_per_subject: int = 2,
                            als_fraction: float = 0.5, shape_jitter: float = 0.0) -> list[Case]:
    """One synthetic subject rendered in each contrast.

    Contrasts are spread round-robin over ``grids_per_subject`` random acquisition grids
    (resolution, field of view, rotation, tilt, storage order all drawn per grid); the
    subject's anatomy is rendered once per grid and shared by the contrasts on it. The
    ``random`` and ``dwi_b0`` images carry random acquisition artefacts
    (:func:`alsseg.synth.artefacts.render_case`: EPI distortion with the labels warped alike,
    motion, low resolution, ghosts). ``shape_jitter`` widens the compartment geometry beyond the
    published spread (:func:`alsseg.synth.make_subject`).
    Case ids are ``synth<seed>__<contrast>[<k>]`` (the part before ``__`` groups a subject's
    cases in the train/validation split).
    """
    from alsseg.synth import make_subject, random_grid, render_tissues
    from alsseg.synth.artefacts import render_case

    subject = make_subject(int(seed), disease=disease_of(seed, als_fraction), shape_jitter=shape_jitter)
    out = []
    counts: dict[str, int] = {}
    for g in range(max(1, grids_per_subject)):
        mine = [c for i, c in enumerate(contrasts) if i % max(1, grids_per_subject) == g]
        if not mine:
            continue
        rng = np.random.default_rng([int(seed), 7919, g])
        grid = random_grid(rng, slice_mm=(3.0, 10.0), p_one_leg=0.15, p_ends=P_ENDS,
                           joints_z_mm=(subject.z_ankle_mm, subject.z_ankle_mm + subject.leg_length_mm))
        tv = render_tissues(subject, grid)
        for c in mine:
            img, labels = render_case(subject, grid, c, rng, tissues=tv)
            k = counts.get(c, 0)
            counts[c] = k + 1
            cid = f"synth{int(seed):05d}__{c}" + (str(k) if k else "")
            out.append(Case(cid, grid.image(np.asarray(img.data, np.float32)), labels.astype(np.int16),
                            f"synth seed {seed} {c}"))
    return out


def synthetic_cases(seeds: Sequence[int], contrasts: Sequence[str], *, grids_per_subject: int = 2,
                    als_fraction: float = 0.5, shape_jitter: float = 0.0, workers: int = 1) -> Iterator[Case]:
    """Cases of many synthetic subjects (see :func:`synthetic_subject_cases`), in seed order.

    ``workers`` > 1 renders subjects in parallel processes.
    """
    from functools import partial

    fn = partial(synthetic_subject_cases, contrasts=list(contrasts), grids_per_subject=grids_per_subject,
                 als_fraction=als_fraction, shape_jitter=shape_jitter)
    if workers <= 1:
        for s in seeds:
            yield from fn(s)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as ex:
        for cases in ex.map(fn, list(seeds)):
            yield from cases


def check_dataset_request(out: str | Path, *, val_fraction: float = 0.2, sparse_every: int | None = None) -> None:
    """Refuse a dataset request before any case is made.

    Raises
    ------
    InputError
        ``sparse_every`` < 1, ``val_fraction`` outside [0, 1), ``out`` already holds a dataset.
    """
    if sparse_every is not None and sparse_every < 1:
        raise InputError(None, "--sparse-every must be >= 1")
    if not 0 <= val_fraction < 1:
        raise InputError(None, "--val-fraction must be in [0, 1)")
    if (Path(out) / "dataset.json").exists():
        raise InputError(out, "already holds a dataset.json; choose a new folder")


def build_dataset(out: str | Path, cases: Iterable[Case], *, extra: dict | None = None, val_fraction: float = 0.2,
                  seed: int = 0, sparse_every: int | None = None, progress: bool = False,
                  write_threads: int = 1) -> Path:
    """Write ``cases`` as a training dataset at ``out`` (:func:`alsseg.seg.dataset.write_dataset`),
    atomically: built in a hidden sibling folder, then renamed, so nothing half-written is ever
    left under ``out``.

    Raises
    ------
    InputError
        ``sparse_every`` < 1, ``val_fraction`` outside [0, 1), ``out`` already holds a dataset or
        is not empty, or a case is bad (see ``write_dataset``).
    """
    import shutil
    import tempfile

    from alsseg.seg.dataset import write_dataset

    check_dataset_request(out, val_fraction=val_fraction, sparse_every=sparse_every)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_dataset(tmp / "ds", cases, val_fraction=val_fraction, seed=seed, sparse_every=sparse_every,
                      extra=extra, progress=progress, write_threads=write_threads)
        if out.exists():
            if any(out.iterdir()):
                raise InputError(out, "exists and is not empty")
            out.rmdir()
        (tmp / "ds").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
