"""Training datasets in the nnU-Net v2 raw layout.

::

    DatasetNNN_NAME/
      dataset.json            channel_names, labels (consecutive, "ignore" last), numTraining,
                              file_ending; plus an "alsseg" block (anatomy, label scheme, sources)
      imagesTr/CASE_0000.nii.gz
      labelsTr/CASE.nii.gz    side-agnostic muscle classes 0..n (0 = background), n+1 = ignore
      splits_final.json       [{"train": [...], "val": [...]}]  (fixed, saved once)

Label maps are stored **side-agnostic** (muscle index 1..7 regardless of side) because the
network predicts side-agnostic classes and left/right is assigned afterwards in world
coordinates; this also keeps nnU-Net's requirement of consecutive labels, so the same folder
trains an nnU-Net baseline unchanged. The ``ignore`` label (n+1) marks voxels that were not
annotated (sparse, every n-th slice annotation); it contributes to no loss term.
"""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterable, Iterator

import numpy as np

from alsseg.io.atomic import write_text_atomic
from alsseg.io.case import Case
from alsseg.io.errors import InputError
from alsseg.io.nifti import Image, load_nifti, save_nifti
from alsseg.labels import Anatomy, load_anatomy

#: value accepted in *input* side-specific label maps for "not annotated".
UNANNOTATED_INPUT = 255


def mark_unoutlined_inside_legs(labels: np.ndarray, anatomy: Anatomy | None = None) -> np.ndarray:
    """Partial outlines → training labels: within each leg, per slice, unlabelled pixels inside the
    convex hull of that leg's outlined muscles become :data:`UNANNOTATED_INPUT` (255).

    For annotations that outline only some muscles (e.g. no deep posterior compartment): label 0
    inside the leg then means "not outlined", not background; outside the hull it stays
    background (fat, skin, air).

    Args:
        labels: ``(X, Y, Z)`` side-specific label map (0, right ids, left ids, 255).

    Returns:
        a new ``(X, Y, Z)`` int16 map.
    """
    from skimage.morphology import convex_hull_image

    anatomy = anatomy or load_anatomy()
    out = np.asarray(labels).astype(np.int16).copy()
    for side in anatomy.side_offsets:
        ids = [lb.id for lb in anatomy.labels if lb.side == side]
        for z in range(out.shape[2]):
            leg = np.isin(labels[..., z], ids)
            if leg.sum() >= 3:
                hull = convex_hull_image(leg)
                out[..., z][hull & (labels[..., z] == 0)] = UNANNOTATED_INPUT
    return out


def ignore_label(anatomy: Anatomy) -> int:
    """The ignore label of a side-agnostic dataset (one above the last muscle)."""
    return anatomy.n_muscles + 1


def to_side_agnostic(labels: np.ndarray, anatomy: Anatomy, path=None) -> np.ndarray:
    """Side-specific label map → side-agnostic classes (uint8); unannotated (255) → ignore.

    Raises:
        InputError: a value that is neither a label of the anatomy nor 255.
    """
    lab = np.asarray(labels)
    non_integer = np.issubdtype(lab.dtype, np.floating) and (not np.all(np.isfinite(lab))
                                                             or np.any(lab != np.round(lab)))
    if non_integer:
        raise InputError(path, "label map has non-integer values")
    lab = lab.astype(np.int64)
    values = np.unique(lab)
    allowed = anatomy.valid_ids() | {UNANNOTATED_INPUT}
    bad = sorted(set(values.tolist()) - allowed)
    if bad:
        raise InputError(path, f"label value(s) {bad[:10]} are not in the {anatomy.name} label table "
                               f"(allowed: 0, {', '.join(str(i) for i in sorted(anatomy.valid_ids() - {0}))}"
                               f", {UNANNOTATED_INPUT} = not annotated)")
    lut = np.zeros(max(allowed) + 1, np.uint8)
    for lb in anatomy.labels:
        lut[lb.id] = lb.muscle.index
    lut[UNANNOTATED_INPUT] = ignore_label(anatomy)
    return lut[lab]


def sparsify(agnostic: np.ndarray, every: int, anatomy: Anatomy, offset: int = 0) -> np.ndarray:
    """Keep every ``every``-th axial slice (axis 2) annotated; the others become ignore."""
    out = agnostic.copy()
    keep = np.zeros(out.shape[2], bool)
    keep[offset % every::every] = True
    out[:, :, ~keep] = ignore_label(anatomy)
    return out


def dataset_json(anatomy: Anatomy, n_training: int, channel: str = "MRI", extra: dict | None = None) -> dict:
    """The nnU-Net v2 ``dataset.json`` of a side-agnostic dataset."""
    labels = {"background": 0}
    for m in anatomy.muscles:
        labels[m.abbrev] = m.index
    labels["ignore"] = ignore_label(anatomy)
    return {
        "channel_names": {"0": channel},
        "labels": labels,
        "numTraining": n_training,
        "file_ending": ".nii.gz",
        "alsseg": {"anatomy": anatomy.name, "label_scheme": "side-agnostic", **(extra or {})},
    }


def write_dataset(root: str | Path, cases: Iterable[Case], *, anatomy: str = "lowerleg",
                  val_fraction: float = 0.2, seed: int = 0, sparse_every: int | None = None,
                  channel: str = "MRI", extra: dict | None = None, progress: bool = False,
                  write_threads: int = 1) -> Path:
    """Write cases in the nnU-Net v2 raw layout with a fixed, saved train/validation split.

    Args:
        root: dataset folder (created; must not already hold a ``dataset.json``).
        cases: :class:`Case` objects (side-specific labels, image grid == label grid).
        val_fraction: fraction of *groups* (the part of the case id before ``__``, e.g. one
            synthetic subject rendered in several contrasts) kept for validation.
        sparse_every: keep only every n-th slice annotated (others → ignore label).
        write_threads: threads compressing and writing the NIfTI files (gzip releases the GIL;
            with cases rendered in parallel processes, one writing thread is the bottleneck).

    Raises:
        InputError: bad labels, image/label grid mismatch, an existing dataset at ``root``.
    """
    from alsseg.progress import progress_bar

    root = Path(root)
    anat = load_anatomy(anatomy)
    if (root / "dataset.json").exists():
        raise InputError(root, "already holds a dataset.json; choose a new folder")
    ids = []
    with ThreadPoolExecutor(max(1, write_threads)) as pool:
        pending: deque = deque()
        for case in progress_bar(cases, desc="dataset", unit="case", show=progress):
            image = case.image
            if image.data.ndim != 3:
                raise InputError(image.path or case.case_id, f"image is {image.data.ndim}-D, expected 3-D")
            if case.labels.shape != image.data.shape:
                raise InputError(case.source or case.case_id, f"label grid {case.labels.shape} does not match "
                                                              f"image grid {image.data.shape}")
            agn = to_side_agnostic(case.labels, anat, case.source or case.case_id)
            if sparse_every and sparse_every > 1:
                agn = sparsify(agn, sparse_every, anat)
            pending.append(pool.submit(save_nifti, Image(image.data.astype(np.float32), image.affine),
                                       root / "imagesTr" / f"{case.case_id}_0000.nii.gz"))
            pending.append(pool.submit(save_nifti, Image(agn, image.affine),
                                       root / "labelsTr" / f"{case.case_id}.nii.gz", dtype=np.uint8))
            ids.append(case.case_id)
            while len(pending) > 4 * max(1, write_threads):  # bounded memory: wait for the oldest
                pending.popleft().result()
        for f in pending:
            f.result()
    if not ids:
        raise InputError(root, "no cases to write")
    write_text_atomic(root / "splits_final.json", json.dumps([make_split(ids, val_fraction, seed)], indent=1))
    meta = dict(extra or {})
    if sparse_every:
        meta["sparse_every"] = sparse_every
    write_text_atomic(root / "dataset.json", json.dumps(dataset_json(anat, len(ids), channel, meta), indent=1))
    return root


def make_split(case_ids: list[str], val_fraction: float, seed: int) -> dict:
    """A train/validation split by group (case id prefix before ``__``), seeded."""
    groups = sorted({c.split("__")[0] for c in case_ids})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    n_val = round(float(val_fraction * len(groups)))
    if len(groups) > 1:
        n_val = min(max(n_val, 1 if val_fraction > 0 else 0), len(groups) - 1)
    val_groups = {groups[i] for i in order[:n_val]}
    return {"train": sorted(c for c in case_ids if c.split("__")[0] not in val_groups),
            "val": sorted(c for c in case_ids if c.split("__")[0] in val_groups)}


class RawDataset:
    """Read access to an nnU-Net v2 raw dataset written by :func:`write_dataset` (or by hand).

    Raises :class:`InputError` at open for a missing/invalid ``dataset.json`` or missing files,
    and at :meth:`load` for labels outside the label table or an image/label grid mismatch.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        js = self.root / "dataset.json"
        if not js.is_file():
            raise InputError(self.root, "not a dataset: no dataset.json")
        try:
            self.spec = json.loads(js.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(js, f"not valid JSON ({exc.msg})") from None
        for key in ("labels", "channel_names"):
            if key not in self.spec:
                raise InputError(js, f"missing key {key!r}")
        self.labels = {k: int(v) for k, v in self.spec["labels"].items()}
        self.n_classes = max(v for k, v in self.labels.items() if k != "ignore") + 1
        self.ignore = self.labels.get("ignore")
        alss = self.spec.get("alsseg", {})
        self.anatomy = load_anatomy(alss.get("anatomy", "lowerleg"))
        if self.n_classes != self.anatomy.n_muscles + 1:
            raise InputError(js, f"{self.n_classes - 1} foreground labels, anatomy {self.anatomy.name} "
                                 f"has {self.anatomy.n_muscles} muscles")
        self.case_ids = sorted(p.name[: -len(".nii.gz")] for p in (self.root / "labelsTr").glob("*.nii.gz"))
        if not self.case_ids:
            raise InputError(self.root / "labelsTr", "no label maps")
        for c in self.case_ids:
            if not self.image_path(c).is_file():
                raise InputError(self.image_path(c), "image of a labelled case is missing")
        sp = self.root / "splits_final.json"
        if sp.is_file():
            self.split = json.loads(sp.read_text())[0]
        else:
            self.split = make_split(self.case_ids, 0.2, 0)
        missing = sorted((set(self.split["train"]) | set(self.split["val"])) - set(self.case_ids))
        if missing:
            raise InputError(sp, f"split names cases that do not exist: {missing[:5]}")

    def image_path(self, case_id: str) -> Path:
        return self.root / "imagesTr" / f"{case_id}_0000.nii.gz"

    def label_path(self, case_id: str) -> Path:
        return self.root / "labelsTr" / f"{case_id}.nii.gz"

    def load(self, case_id: str) -> tuple[Image, np.ndarray]:
        """``(image, labels)``: a 3-D image and its side-agnostic ``(X, Y, Z)`` uint8 labels."""
        img = load_nifti(self.image_path(case_id), ndim=3)
        lab = load_nifti(self.label_path(case_id), ndim=3, dtype=None)
        if img.shape != lab.shape or not np.allclose(img.affine, lab.affine, atol=1e-3):
            raise InputError(self.label_path(case_id), f"label grid {lab.shape} does not match image grid "
                                                       f"{img.shape} of {self.image_path(case_id).name}")
        data = np.asarray(lab.data)
        if np.issubdtype(data.dtype, np.floating) and np.any(data != np.round(data)):
            raise InputError(self.label_path(case_id), "label map has non-integer values")
        data = data.astype(np.int64)
        allowed = set(range(self.n_classes)) | ({self.ignore} if self.ignore is not None else set())
        bad = sorted(set(np.unique(data).tolist()) - allowed)
        if bad:
            raise InputError(self.label_path(case_id), f"label value(s) {bad[:10]} are outside the dataset's "
                                                       f"label table 0..{max(allowed)}")
        return img, data.astype(np.uint8)

    def __iter__(self) -> Iterator[str]:
        return iter(self.case_ids)

    def __len__(self) -> int:
        return len(self.case_ids)


def index_dataset(root: str | Path, *, anatomy: str = "lowerleg", val_fraction: float = 0.2, seed: int = 0,
                  channel: str = "MRI", extra: dict | None = None) -> Path:
    """Write ``dataset.json`` and ``splits_final.json`` for ``imagesTr``/``labelsTr`` files already
    in the layout (side-agnostic labels), e.g. a folder assembled by hand or an interrupted build.

    Cases need both files; an existing ``splits_final.json`` is kept (splits are fixed once made).

    Raises:
        InputError: no complete case.
    """
    root = Path(root)
    anat = load_anatomy(anatomy)
    ids = sorted(p.name[: -len(".nii.gz")] for p in (root / "labelsTr").glob("*.nii.gz")
                 if (root / "imagesTr" / (p.name[: -len(".nii.gz")] + "_0000.nii.gz")).is_file())
    if not ids:
        raise InputError(root, "no case with both imagesTr/CASE_0000.nii.gz and labelsTr/CASE.nii.gz")
    if not (root / "splits_final.json").is_file():
        write_text_atomic(root / "splits_final.json", json.dumps([make_split(ids, val_fraction, seed)], indent=1))
    write_text_atomic(root / "dataset.json", json.dumps(dataset_json(anat, len(ids), channel, extra), indent=1))
    return root
