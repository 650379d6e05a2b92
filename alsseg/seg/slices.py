"""Preprocessed training data in memory: per case ``(X', Y', Z)`` image and label volumes, and a
seeded sampler of 2-D patches (foreground-biased, padded where a slice is smaller than a patch)."""

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
    ``spacing_mm`` (2,).
    """
    from tqdm import tqdm

    out = []
    folder = None if cache_dir is None else Path(cache_dir) / config_key(cfg)
    for cid in tqdm(case_ids, desc="preprocess", unit="case", disable=not progress):
        f = None if folder is None else folder / f"{cid}.npz"
        if f is not None and f.is_file():
            z = np.load(f)
            out.append({"id": cid, "image": z["image"], "labels": z["labels"], "spacing_mm": z["spacing_mm"]})
            continue
        img, lab = ds.load(cid)
        prep = prepare(img, cfg)
        lab_ras = img.with_data(lab).to_ras().data
        plab = prepare_labels(lab_ras, prep).astype(np.uint8)
        item = {"id": cid, "image": prep.data.astype(np.float32), "labels": plab,
                "spacing_mm": np.asarray(prep.spacing_mm, np.float32)}
        if f is not None:
            with atomic_path(f, suffix=".npz") as tmp:
                np.savez(tmp, image=item["image"], labels=item["labels"], spacing_mm=item["spacing_mm"])
        out.append(item)
    return out


class PatchSampler:
    """Seeded sampler of 2-D patches from preprocessed cases.

    A batch depends only on ``(seed, rank, iteration)``, so a resumed run draws exactly the
    batches an uninterrupted run would have drawn.
    """

    def __init__(self, cases: list[dict], patch_size, ignore_label: int, foreground_fraction: float = 0.9):
        self.cases = cases
        self.patch = tuple(int(p) for p in patch_size)
        self.ignore = ignore_label
        self.fg_fraction = foreground_fraction
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
        """``(x, y)``: ``(B, 1, H, W)`` float32 and ``(B, 1, H, W)`` int64 numpy arrays."""
        rng = np.random.default_rng([seed, rank, iteration])
        H, W = self.patch
        xs = np.empty((batch_size, 1, H, W), np.float32)
        ys = np.empty((batch_size, 1, H, W), np.int64)
        usable = [i for i, (a, _) in enumerate(self.slices) if len(a)]
        for b in range(batch_size):
            ci = usable[rng.integers(len(usable))]
            c = self.cases[ci]
            annotated, fg = self.slices[ci]
            want_fg = rng.random() < self.fg_fraction and len(fg)
            z = int(rng.choice(fg if want_fg else annotated))
            img = c["image"][:, :, z]
            lab = c["labels"][:, :, z]
            if want_fg:
                pts = np.argwhere((lab > 0) & (lab != self.ignore))
                cx, cy = pts[rng.integers(len(pts))]
            else:
                cx, cy = rng.integers(img.shape[0]), rng.integers(img.shape[1])
            xs[b, 0], ys[b, 0] = self._crop(img, lab, int(cx), int(cy), rng)
        return xs, ys

    def _crop(self, img, lab, cx, cy, rng):
        H, W = self.patch
        jx, jy = rng.integers(-H // 4, H // 4 + 1), rng.integers(-W // 4, W // 4 + 1)
        x0 = cx + jx - H // 2
        y0 = cy + jy - W // 2
        pad_val = float(img.min())
        out_i = np.full((H, W), pad_val, np.float32)
        out_l = np.zeros((H, W), np.int64)
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(img.shape[0], x0 + H), min(img.shape[1], y0 + W)
        if sx1 > sx0 and sy1 > sy0:
            out_i[sx0 - x0:sx1 - x0, sy0 - y0:sy1 - y0] = img[sx0:sx1, sy0:sy1]
            out_l[sx0 - x0:sx1 - x0, sy0 - y0:sy1 - y0] = lab[sx0:sx1, sy0:sy1]
        return out_i, out_l
