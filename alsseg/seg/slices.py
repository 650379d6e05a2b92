"""Preprocessed training data in memory: per case ``(X', Y', Z)`` image and label volumes, and a
seeded sampler of patches (foreground-biased, padded where a slice is smaller than a patch):
2-D slices; 2.5-D: the neighbouring slices ride along as extra channels; 3-D: ``D`` consecutive
slices, padded along z (image minimum, ignore label) where a volume has fewer."""

from __future__ import annotations

from typing import Any

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from alsseg.io.atomic import atomic_path
from alsseg.seg.dataset import RawDataset
from alsseg.seg.preprocess import prepare, prepare_labels
from alsseg.seg.recipe import PreprocessConfig


def config_key(cfg: PreprocessConfig) -> str:
    """Short hash of a preprocessing configuration (names the cache folder)."""
    return hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode()).hexdigest()[:12]


#: fewer cases to preprocess than this are done in the calling process
MIN_CASES_PER_POOL = 8


def load_prepared(ds: RawDataset, case_ids, cfg: PreprocessConfig, cache_dir: Path | None,
                  progress: bool = False, workers: int = 1) -> list[dict]:
    """Preprocess cases (cached as ``.npz`` under ``cache_dir/<config hash>/``), in ``workers``
    processes when at least :data:`MIN_CASES_PER_POOL` cases need preprocessing (workers are
    spawned, safe in a process that already holds a GPU, and take about a second to start).

    Returns
    -------
    list of dict (in ``case_ids`` order) with ``id``, ``image`` (X', Y', Z) float32, ``labels``
    (X', Y', Z) uint8, ``spacing_mm`` (2,) in-plane, ``slice_mm`` slice spacing.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    from alsseg.progress import progress_bar

    case_ids = list(case_ids)
    folder = None if cache_dir is None else Path(cache_dir) / config_key(cfg)
    files = [None if folder is None else folder / f"{cid}.npz" for cid in case_ids]
    bar: dict[str, Any] = {"total": len(case_ids), "desc": "preprocess", "unit": "case", "show": progress}
    todo = sum(f is None or not f.is_file() for f in files)
    if workers <= 1 or todo < MIN_CASES_PER_POOL:
        return [prepare_case(ds, cid, cfg, f) for cid, f in progress_bar(list(zip(case_ids, files)), **bar)]
    with ProcessPoolExecutor(min(workers, len(case_ids)), mp_context=mp.get_context("spawn")) as ex:
        return list(progress_bar(ex.map(prepare_case, repeat(ds), case_ids, repeat(cfg), files, chunksize=2), **bar))


def prepare_case(ds: RawDataset, cid: str, cfg: PreprocessConfig, cache_file: Path | None) -> dict:
    """One case of :func:`load_prepared`: read from ``cache_file`` when it holds it, else preprocess
    (and write ``cache_file`` atomically)."""
    if cache_file is not None and cache_file.is_file():
        z = np.load(cache_file)
        if "slice_mm" in z.files:  # (caches written before slice_mm was stored are rebuilt)
            return {"id": cid, "image": z["image"], "labels": z["labels"], "spacing_mm": z["spacing_mm"],
                    "slice_mm": float(z["slice_mm"])}
    img, lab = ds.load(cid)
    prep = prepare(img, cfg)
    lab_ras = img.with_data(lab).to_ras().data
    plab = prepare_labels(lab_ras, prep).astype(np.uint8)
    item: dict[str, Any] = {"id": cid, "image": prep.data.astype(np.float32), "labels": plab,
            "spacing_mm": np.asarray(prep.spacing_mm, np.float32), "slice_mm": float(prep.ras.spacing_mm[2])}
    if cache_file is not None:
        with atomic_path(cache_file, suffix=".npz") as tmp:
            np.savez(tmp, image=item["image"], labels=item["labels"], spacing_mm=item["spacing_mm"],
                     slice_mm=item["slice_mm"])
    return item


def uses_context(context_slices: int, slice_mm: float, max_context_spacing_mm: float) -> bool:
    """Whether a 2.5-D network gets real neighbours: it has context slices and the slices are at
    most ``max_context_spacing_mm`` apart (``slice_mm``, mm). One rule for training, validation
    and inference."""
    return context_slices > 0 and float(slice_mm) <= max_context_spacing_mm


def context_channels(volume: np.ndarray, zs, context_slices: int, use_context: bool = True) -> np.ndarray:
    """Slices ``zs`` of a volume with their neighbours as channels.

    Parameters
    ----------
    volume : (X, Y, Z) array.
    zs : centre slice indices (n,).
    context_slices : k neighbours on each side (0 = plain 2-D).
    use_context : False puts the centre slice in every channel (no usable neighbours).

    Returns
    -------
    (n, 2k + 1, X, Y) array, channel k the centre slice; indices past the ends repeat the end slice.
    """
    k = int(context_slices)
    offs = np.arange(-k, k + 1) if use_context else np.zeros(2 * k + 1, int)
    idx = np.clip(np.asarray(zs, int)[:, None] + offs[None, :], 0, volume.shape[2] - 1)  # (n, C)
    return np.ascontiguousarray(np.moveaxis(volume[:, :, idx], (2, 3), (0, 1)))


class PatchSampler:
    """Seeded sampler of patches from preprocessed cases.

    ``patch_size`` (H, W) draws 2-D slices; (H, W, D) draws 3-D patches of D consecutive slices
    around a centre slice drawn as in 2-D (a foreground or annotated slice, so sparse labels
    centre on annotated slices). Along z the window is jittered by up to D/4 and kept inside
    the volume; a volume with fewer than D slices sits at a random offset in the window and the
    missing slices are padded with the image minimum and the ignore label (no loss there).

    With ``context_slices`` k > 0 (2-D only) each patch carries its k neighbouring slices on each
    side as channels (2.5-D); with probability ``p_context_drop``, and always for cases whose slice
    spacing exceeds ``max_context_spacing_mm``, the centre slice fills every channel instead, the
    mode inference uses for widely spaced slices.

    A batch depends only on ``(seed, rank, iteration)``, so a resumed run draws exactly the
    batches an uninterrupted run would have drawn.
    """

    def __init__(self, cases: list[dict], patch_size, ignore_label: int, foreground_fraction: float = 0.9,
                 context_slices: int = 0, p_context_drop: float = 0.0, max_context_spacing_mm: float = np.inf):
        self.cases = cases
        self.patch = tuple(int(p) for p in patch_size)
        if len(self.patch) not in (2, 3) or (len(self.patch) == 3 and context_slices):
            raise ValueError("patch_size must be (H, W) or (H, W, D); context slices need 2-D patches")
        self.ignore = ignore_label
        self.fg_fraction = foreground_fraction
        self.context = int(context_slices)
        self.p_drop = float(p_context_drop)
        # cases whose slices are too far apart never get neighbours (as at inference)
        self.has_context = [uses_context(self.context, c.get("slice_mm", 0.0), max_context_spacing_mm) for c in cases]
        # per case: annotated slices, and slices with foreground
        self.slices = []
        for c in cases:
            lab = c["labels"]
            annotated = np.flatnonzero((lab != ignore_label).any(axis=(0, 1)))
            fg = np.flatnonzero(((lab > 0) & (lab != ignore_label)).any(axis=(0, 1)))
            self.slices.append((annotated, fg))
        if not any(len(a) for a, _ in self.slices):
            raise ValueError("no annotated slice in the training cases")
        self.minimum = [float(c["image"].min()) for c in cases] if len(self.patch) == 3 else []

    def sample(self, batch_size: int, seed: int, rank: int, iteration: int):
        """``(x, y)`` float32 / int64 numpy arrays.

        2-D: ``(B, C, H, W)`` (C = 2 * context + 1 slices, centre in the middle) and ``(B, 1, H, W)``.
        3-D: ``(B, 1, H, W, D)`` and ``(B, 1, H, W, D)``.
        """
        rng = np.random.default_rng([seed, rank, iteration])
        if len(self.patch) == 3:
            return self._sample_3d(batch_size, rng)
        H, W = self.patch
        xs = np.empty((batch_size, 2 * self.context + 1, H, W), np.float32)
        ys = np.empty((batch_size, 1, H, W), np.int64)
        for b in range(batch_size):
            ci, z, want_fg = self._centre(rng)
            c = self.cases[ci]
            use = self.has_context[ci] and not (rng.random() < self.p_drop)
            img = context_channels(c["image"], [z], self.context, use)[0]
            lab = c["labels"][:, :, z]
            cx, cy = self._point(lab, want_fg, rng)
            xs[b], ys[b] = self._crop(img, lab[None], cx, cy, rng)
        return xs, ys

    def _centre(self, rng):
        """``(case index, centre slice, foreground wanted)`` drawn from annotated/foreground slices."""
        usable = [i for i, (a, _) in enumerate(self.slices) if len(a)]
        ci = usable[rng.integers(len(usable))]
        annotated, fg = self.slices[ci]
        want_fg = bool(rng.random() < self.fg_fraction and len(fg))
        z = int(rng.choice(fg if want_fg else annotated))
        return ci, z, want_fg

    def _point(self, lab, want_fg, rng):
        """In-plane centre: a foreground voxel of slice ``lab`` (X, Y), or any voxel of the slice."""
        if want_fg:
            pts = np.argwhere((lab > 0) & (lab != self.ignore))
            cx, cy = pts[rng.integers(len(pts))]
        else:
            cx, cy = rng.integers(lab.shape[0]), rng.integers(lab.shape[1])
        return int(cx), int(cy)

    def _sample_3d(self, batch_size: int, rng):
        """3-D batch: ``(B, 1, H, W, D)`` image and label patches."""
        H, W, D = self.patch
        xs = np.empty((batch_size, 1, H, W, D), np.float32)
        ys = np.empty((batch_size, 1, H, W, D), np.int64)
        for b in range(batch_size):
            ci, z, want_fg = self._centre(rng)
            c = self.cases[ci]
            z0 = self._z_start(z, c["image"].shape[2], rng)
            img, lab = self._z_window(c["image"], c["labels"], z0, self.minimum[ci])  # (D, X, Y)
            cx, cy = self._point(c["labels"][:, :, z], want_fg, rng)
            pi, pl = self._crop(img, lab, cx, cy, rng, pad_val=self.minimum[ci])
            n_z = c["image"].shape[2]
            pl[[d for d in range(D) if not 0 <= z0 + d < n_z]] = self.ignore  # z-padding: all ignore
            xs[b, 0], ys[b, 0] = np.moveaxis(pi, 0, 2), np.moveaxis(pl, 0, 2)
        return xs, ys

    def _z_start(self, z: int, n_slices: int, rng) -> int:
        """First slice of a D-slice window around slice ``z`` (negative: padded before slice 0)."""
        D = self.patch[2]
        if n_slices <= D:  # the whole volume fits: random placement inside the window
            return -int(rng.integers(0, D - n_slices + 1))
        jz = int(rng.integers(-(D // 4), D // 4 + 1))
        return int(np.clip(z + jz - D // 2, 0, n_slices - D))

    def _z_window(self, image, labels, z0: int, pad_val: float):
        """Slices ``z0 .. z0 + D - 1`` of ``(X, Y, Z)`` volumes as ``(D, X, Y)`` arrays; slices outside
        the volume: image ``pad_val``, labels the ignore value."""
        D = self.patch[2]
        X, Y, Z = image.shape
        img = np.full((D, X, Y), pad_val, np.float32)
        lab = np.full((D, X, Y), self.ignore, np.int64)
        a, b = max(0, z0), min(Z, z0 + D)
        img[a - z0:b - z0] = np.moveaxis(image[:, :, a:b], 2, 0)
        lab[a - z0:b - z0] = np.moveaxis(labels[:, :, a:b], 2, 0)
        return img, lab

    def _crop(self, img, lab, cx, cy, rng, pad_val: float | None = None):
        """``img`` (C, X, Y), ``lab`` (L, X, Y) → patches (C, H, W), (L, H, W); padded with
        ``pad_val`` (default the image minimum) and background labels."""
        H, W = self.patch[:2]
        jx, jy = rng.integers(-H // 4, H // 4 + 1), rng.integers(-W // 4, W // 4 + 1)
        x0 = cx + jx - H // 2
        y0 = cy + jy - W // 2
        pad_val = float(img.min()) if pad_val is None else pad_val
        out_i = np.full((img.shape[0], H, W), pad_val, np.float32)
        out_l = np.zeros((lab.shape[0], H, W), np.int64)
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(img.shape[1], x0 + H), min(img.shape[2], y0 + W)
        if sx1 > sx0 and sy1 > sy0:
            out_i[:, sx0 - x0:sx1 - x0, sy0 - y0:sy1 - y0] = img[:, sx0:sx1, sy0:sy1]
            out_l[:, sx0 - x0:sx1 - x0, sy0 - y0:sy1 - y0] = lab[:, sx0:sx1, sy0:sy1]
        return out_i, out_l
