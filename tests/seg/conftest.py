"""Fixtures of the segmentation tests: a tiny two-leg phantom drawn with ellipses, datasets,
a tiny recipe, and a tiny trained run (trained once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from alsseg.io import Image

TINY_RECIPE = """\
name: tiny
description: tiny test recipe
preprocess:
  target_spacing_mm: [3.0, 3.0]
network:
  channels: [4, 8, 16]
  strides: [2, 2]
  num_res_units: 1
train:
  seed: 1
  patch_size: [32, 32]
  batch_size: 4
  iterations: 12
  iterations_per_epoch: 4
  learning_rate: 0.01
  num_threads: 1
"""


def toy_leg_labels(shape=(80, 48, 5), spacing=(2.0, 2.0, 7.0), seed=0, legs=2) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, body)``: side-specific label ids on a RAS grid with ``legs`` legs, and the body mask.

    Each leg: an elliptic body (fat), a ring of 7 angular muscle sectors around two bones.
    The right leg is drawn at larger x (RAS: +x = right).
    """
    rng = np.random.default_rng(seed)
    X, Y, Z = shape
    xx, yy = np.meshgrid((np.arange(X) + 0.5) * spacing[0], (np.arange(Y) + 0.5) * spacing[1], indexing="ij")
    lab2d = np.zeros((X, Y), np.uint8)
    body = np.zeros((X, Y), bool)
    centres = [(0.27, "L"), (0.73, "R")] if legs == 2 else [(0.5, "R")]
    for fx, side in centres:
        cx = fx * X * spacing[0] + rng.uniform(-3, 3)
        cy = 0.5 * Y * spacing[1] + rng.uniform(-3, 3)
        a, b = 0.20 * X * spacing[0] * rng.uniform(0.9, 1.05), 0.42 * Y * spacing[1] * rng.uniform(0.9, 1.05)
        r = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)
        body |= r < 1.0
        ang = np.mod(np.arctan2(yy - cy, xx - cx) + rng.uniform(-0.2, 0.2), 2 * np.pi)
        ring = (r > 0.25) & (r < 0.82)
        sector = np.minimum((ang / (2 * np.pi) * 7).astype(int), 6) + 1
        offset = 0 if side == "R" else 10
        lab2d[ring] = (sector[ring] + offset).astype(np.uint8)
    labels = np.repeat(lab2d[:, :, None], Z, axis=2)
    return labels, np.repeat(body[:, :, None], Z, axis=2)


def toy_image(labels: np.ndarray, body: np.ndarray, seed: int = 0, contrast: float = 1.0) -> np.ndarray:
    """Random intensity per class (muscles differ slightly), bright fat, noise."""
    rng = np.random.default_rng(seed + 1000)
    img = np.where(body, 300.0, 5.0)
    base = rng.uniform(80, 120)
    for m in range(1, 8):
        val = base + contrast * 25.0 * m
        img[(labels % 10) == m] = val
    img += rng.normal(0, 4.0, img.shape)
    return np.abs(img).astype(np.float32)


@pytest.fixture
def toy():
    """The toy-data helpers (test modules cannot import conftest under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(leg_labels=toy_leg_labels, image=toy_image, cases=make_toy_cases)


@pytest.fixture
def toy_case():
    """``(Image, labels)`` of a two-leg toy volume (RAS grid, 2 x 2 x 7 mm)."""
    labels, body = toy_leg_labels()
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    return Image(toy_image(labels, body), aff), labels


def make_toy_cases(n: int, seed0: int = 0, shape=(80, 48, 5)):
    from alsseg.seg.dataset import Case

    out = []
    for s in range(seed0, seed0 + n):
        labels, body = toy_leg_labels(shape=shape, seed=s)
        aff = np.diag([2.0, 2.0, 7.0, 1.0])
        out.append(Case(f"toy{s:03d}__c0", Image(toy_image(labels, body, s), aff), labels))
    return out


@pytest.fixture
def toy_dataset(tmp_path):
    """A 6-case nnU-Net raw dataset of toy volumes."""
    from alsseg.seg.dataset import write_dataset

    return write_dataset(tmp_path / "Dataset001_toy", make_toy_cases(6), val_fraction=0.34, seed=0)


@pytest.fixture
def tiny_recipe_file(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY_RECIPE)
    return p


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny training run (12 iterations) on the toy dataset, trained once per session."""
    from alsseg.seg.dataset import write_dataset
    from alsseg.seg.recipe import recipe_from_dict
    from alsseg.seg.train import train
    import yaml

    root = tmp_path_factory.mktemp("tinyrun")
    ds = write_dataset(root / "Dataset001_toy", make_toy_cases(6), val_fraction=0.34, seed=0)
    recipe = recipe_from_dict(yaml.safe_load(TINY_RECIPE))
    train(recipe, ds, root / "run", quiet=True)
    return root / "run", ds


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread in these tests: on a shared 2-core CPU, OpenMP threads spin-wait and a
    second thread makes small networks several times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
