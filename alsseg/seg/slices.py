"""Preprocessed training data in memory: per case ``(X', Y', Z)`` image and label volumes, and a
seeded sampler of 2-D patches (foreground-biased, padded where a slice is smaller than a patch;
2.5-D: the neighbouring slices ride along as extra channels)."""

from __future__ import annotations

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


def load_prepared(ds: RawDataset, case_ids, cfg: PreprocessConfig, cache_dir: Path | None,
                  progress: bool = False) -> list[dict]:
    """Preprocess cases (cached as ``.npz`` under ``cache_dir/<config hash>/``).

    Returns
    -------
    list of dict with ``id``, ``image`` (X', Y', Z) float32, ``labels`` (X', Y', Z) uint8,
    ``spacing_mm`` (2,) in-plane, ``slice_mm`` slice spacing.
    """
    from tqdm import tqdm

    out = []
    folder = None if cache_dir is None else Path(cache_dir) / config_key(cfg)
    for cid in tqdm(case_ids, desc="preprocess", unit="case", disable=not progress):
        f = None if folder is None else folder / f"{cid}.npz"
        if f is not None and f.is_file():
            z = np.load(f)
            if "slice_mm" in z.files:  # (caches written before slice_mm was stored are rebuilt)
                out.append({"id": cid, "image": z["image"], "labels": z["labels"], "spacing_mm": z["spacing_mm"],
                            "slice_mm": float(z["slice_mm"])})
                continue
        img, lab = ds.load(cid)
        prep = prepare(img, cfg)
        lab_ras = img.with_data(lab).to_ras().data
        plab = prepare_labels(lab_ras, prep).astype(np.uint8)
        item = {"id": cid, "image": prep.data.astype(np.float32), "labels": plab,
                "spacing_mm": np.asarray(prep.spacing_mm, np.float32), "slice_mm": float(prep.ras.spacing_mm[2])}
        if f is not None:
            with atomic_path(f, suffix=".npz") as tmp:
                np.savez(tmp, image=item["image"], labels=item["labels"], spacing_mm=item["spacing_mm"],
                         slice_mm=item["slice_mm"])
        out.append(item)
    return out


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
    """Seeded sampler of 2-D patches from preprocessed cases.

    With ``context_slices`` k > 0 each patch carries its k neighbouring slices on each side as
    channels (2.5-D); with probability ``p_context_drop``, and always for cases whose slice
    spacing exceeds ``max_context_spacing_mm``, the centre slice fills every channel instead, the
    mode inference uses for widely spaced slices. A batch depends only on ``(seed, rank, iteration)``, so a resumed run draws exactly the
    batches an uninterrupted run would have drawn.
    """

    def __init__(self, cases: list[dict], patch_size, ignore_label: int, foreground_fraction: float = 0.9,
                 context_slices: int = 0, p_context_drop: float = 0.0, max_context_spacing_mm: float = np.inf):
        self.cases = cases
        self.patch = tuple(int(p) for p in patch_size)
        self.ignore = ignore_label
        self.fg_fraction = foreground_fraction
        self.context = int(context_slices)
        self.p_drop = float(p_context_drop)
        # cases whose slices are too far apart never get neighbours (as at inference)
        self.has_context = [bool(self.context) and float(c.get("slice_mm", 0.0)) <= max_context_spacing_mm
                            for c in cases]
        # per case: annotated slices, and slices with foreground
        self.slices = []
        for c in cases:
            lab = c["labels"]
            annotated = np.flatnonzero((lab != ignore_label).any(axis=(0, 1)))
            fg = np.flatnonzero(((lab > 0) & (lab != ignore_label)).any(axis=(0, 1)))
            self.slices.append((annotated, fg))
        if not any(len(a) for a, _ in self.slices):
            raise ValueError("no annotated slice in the training cases")

    def sample(self, batch_size: int, seed: int, rank: int, iteration: int):
        """``(x, y)``: ``(B, C, H, W)`` float32 (C = 2 * context + 1 slices, centre in the middle)
        and ``(B, 1, H, W)`` int64 numpy arrays."""
        rng = np.random.default_rng([seed, rank, iteration])
        H, W = self.patch
        xs = np.empty((batch_size, 2 * self.context + 1, H, W), np.float32)
        ys = np.empty((batch_size, 1, H, W), np.int64)
        usable = [i for i, (a, _) in enumerate(self.slices) if len(a)]
        for b in range(batch_size):
            ci = usable[rng.integers(len(usable))]
            c = self.cases[ci]
            annotated, fg = self.slices[ci]
            want_fg = rng.random() < self.fg_fraction and len(fg)
            z = int(rng.choice(fg if want_fg else annotated))
            use = self.has_context[ci] and not (rng.random() < self.p_drop)
            img = context_channels(c["image"], [z], self.context, use)[0]
            lab = c["labels"][:, :, z]
            if want_fg:
                pts = np.argwhere((lab > 0) & (lab != self.ignore))
                cx, cy = pts[rng.integers(len(pts))]
            else:
                cx, cy = rng.integers(img.shape[0]), rng.integers(img.shape[1])
            xs[b], ys[b, 0] = self._crop(img, lab, int(cx), int(cy), rng)
        return xs, ys

    def _crop(self, img, lab, cx, cy, rng):
        """``img`` (C, X, Y), ``lab`` (X, Y) → patches (C, H, W), (H, W); padded with the image minimum."""
        H, W = self.patch
        jx, jy = rng.integers(-H // 4, H // 4 + 1), rng.integers(-W // 4, W // 4 + 1)
        x0 = cx + jx - H // 2
        y0 = cy + jy - W // 2
        pad_val = float(img.min())
        out_i = np.full((img.shape[0], H, W), pad_val, np.float32)
        out_l = np.zeros((H, W), np.int64)
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(img.shape[1], x0 + H), min(img.shape[2], y0 + W)
        if sx1 > sx0 and sy1 > sy0:
            out_i[:, sx0 - x0:sx1 - x0, sy0 - y0:sy1 - y0] = img[:, sx0:sx1, sy0:sy1]
            out_l[sx0 - x0:sx1 - x0, sy0 - y0:sy1 - y0] = lab[sx0:sx1, sy0:sy1]
        return out_i, out_l
