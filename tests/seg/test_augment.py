"""Augmentation: shapes, label values, determinism, mirror."""

import torch

from alsseg.seg.augment import augment_batch
from alsseg.seg.recipe import AugmentConfig


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 32, 32, generator=g)
    y = torch.zeros(4, 1, 32, 32, dtype=torch.long)
    y[:, :, 8:16, 4:12] = 3
    y[:, :, 20:28, 20:30] = 8  # ignore label
    return x, y


def test_shapes_labels_and_determinism():
    x, y = _batch()
    cfg = AugmentConfig(p_affine=1, p_elastic=1, p_bias=1, p_gamma=1, p_noise=1, p_lowres=1, p_invert=0.5)
    a = augment_batch(x, y, cfg, torch.Generator().manual_seed(5))
    b = augment_batch(x, y, cfg, torch.Generator().manual_seed(5))
    c = augment_batch(x, y, cfg, torch.Generator().manual_seed(6))
    assert a[0].shape == x.shape and a[1].shape == y.shape and a[1].dtype == torch.long
    assert set(torch.unique(a[1]).tolist()) <= {0, 3, 8}
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.isfinite(a[0]).all()


def test_identity_when_all_off():
    x, y = _batch()
    cfg = AugmentConfig(p_affine=0, p_elastic=0, p_flip_lr=0, p_bias=0, p_gamma=0, p_noise=0, p_lowres=0)
    xa, ya = augment_batch(x, y, cfg, torch.Generator().manual_seed(1))
    torch.testing.assert_close(xa, x, atol=1e-5, rtol=1e-5)
    assert torch.equal(ya, y)


def test_mirror_flips_image_and_labels_together():
    x, y = _batch()
    cfg = AugmentConfig(p_affine=0, p_elastic=0, p_flip_lr=1, p_bias=0, p_gamma=0, p_noise=0, p_lowres=0)
    xa, ya = augment_batch(x, y, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(ya, y.flip(2))
    torch.testing.assert_close(xa, x.flip(2), atol=1e-5, rtol=1e-5)
