"""On-the-fly augmentation of 2-D and 3-D batches, in torch (vectorised over the batch, CPU friendly).

Spatial: left-right mirror (safe: the network predicts side-agnostic classes), random affine
(rotation, scale, translation), smooth elastic displacement. Intensity: multiplicative bias
field, gamma, Gaussian noise, lower resolution (down- then up-sampling), optional inversion.
Labels follow the spatial transforms by nearest-neighbour sampling; the ignore label survives.

Every transform acts in-plane and identically on all channels, so a 3-D patch is augmented by
moving its slices into the channel axis (:func:`augment_volume_batch`): each slice gets the
same spatial and intensity transform (slices are 5-10 mm apart: no through-plane rotation).
"""

from __future__ import annotations

import math

from alsseg.seg.recipe import AugmentConfig


def _smooth_field(gen, b: int, c: int, coarse: int, size, device):
    import torch
    import torch.nn.functional as F

    f = torch.randn(b, c, coarse, coarse, generator=gen, device=device)
    return F.interpolate(f, size=tuple(size), mode="bicubic", align_corners=True)


def augment_batch(x, y, cfg: AugmentConfig, gen, spacing_mm: float = 2.0):
    """Augment a batch.

    Parameters
    ----------
    x : (B, C, H, W) float tensor, normalised image patches (C slices or context channels; one
        spatial and intensity transform per batch item, shared by its channels).
    y : (B, L, H, W) long tensor, side-agnostic labels (ignore label allowed; L = 1, or one label
        slice per image slice).
    cfg : probabilities and ranges.
    gen : torch.Generator (seeded: augmentation is deterministic for a seed).
    spacing_mm : in-plane voxel size of the patches, mm (to express elastic_mm in voxels).

    Returns
    -------
    (x, y) augmented, same shapes and dtypes.
    """
    import torch
    import torch.nn.functional as F

    B, _, H, W = x.shape
    dev = x.device

    def coin(p):
        return (torch.rand(B, generator=gen, device=dev) < p)

    def uni(lo, hi):
        return lo + (hi - lo) * torch.rand(B, generator=gen, device=dev)

    # --- spatial -------------------------------------------------------------------------
    flip = coin(cfg.p_flip_lr)
    if flip.any():
        x = torch.where(flip[:, None, None, None], x.flip(2), x)
        y = torch.where(flip[:, None, None, None], y.flip(2), y)
    do_aff = coin(cfg.p_affine)
    do_el = coin(cfg.p_elastic)
    if do_aff.any() or do_el.any():
        ang = uni(-1, 1) * math.radians(cfg.rotate_deg) * do_aff
        lo, hi = cfg.scale_range
        sc = torch.exp(uni(math.log(lo), math.log(hi)))
        sc = torch.where(do_aff, sc, torch.ones_like(sc))
        sc2 = sc * torch.exp(uni(-0.1, 0.1) * do_aff)  # mild anisotropy
        tx, ty = uni(-0.1, 0.1) * do_aff, uni(-0.1, 0.1) * do_aff
        cos, sin = torch.cos(ang), torch.sin(ang)
        theta = torch.stack([torch.stack([cos / sc, -sin / sc, tx], 1),
                             torch.stack([sin / sc2, cos / sc2, ty], 1)], 1)
        grid = F.affine_grid(theta, [B, 1, H, W], align_corners=False)
        if do_el.any():
            disp = _smooth_field(gen, B, 2, 5, (H, W), dev)  # unit-variance, smooth
            amp_vox = cfg.elastic_mm / spacing_mm
            scale = torch.tensor([2.0 * amp_vox / W, 2.0 * amp_vox / H], device=dev)
            disp = disp.permute(0, 2, 3, 1) * scale * do_el[:, None, None, None]
            grid = grid + disp
        xmin = x.amin(dim=(1, 2, 3), keepdim=True)
        x = F.grid_sample(x - xmin, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + xmin
        y = F.grid_sample(y.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).long()

    # --- intensity -----------------------------------------------------------------------
    xmin = x.amin(dim=(1, 2, 3), keepdim=True)
    xmax = x.amax(dim=(1, 2, 3), keepdim=True)
    rng = (xmax - xmin).clamp_min(1e-6)
    u = (x - xmin) / rng  # 0..1
    do_bias = coin(cfg.p_bias)
    if do_bias.any():
        field = _smooth_field(gen, B, 1, 4, (H, W), dev)
        u = u * torch.exp(cfg.bias_strength * field * do_bias[:, None, None, None])
    do_gam = coin(cfg.p_gamma)
    if do_gam.any():
        g = torch.exp(uni(math.log(cfg.gamma_range[0]), math.log(cfg.gamma_range[1])))
        g = torch.where(do_gam, g, torch.ones_like(g))
        u = u.clamp_min(0) ** g[:, None, None, None]
    do_lr = coin(cfg.p_lowres)
    if do_lr.any():
        f = float(uni(*cfg.lowres_factor)[0])
        if f > 1.05:
            small = F.interpolate(u, scale_factor=1.0 / f, mode="bilinear", align_corners=False, antialias=True)
            up = F.interpolate(small, size=(H, W), mode="bilinear", align_corners=False)
            u = torch.where(do_lr[:, None, None, None], up, u)
    do_inv = coin(cfg.p_invert)
    if do_inv.any():
        u = torch.where(do_inv[:, None, None, None], u.amax(dim=(1, 2, 3), keepdim=True) - u, u)
    x = u * rng + xmin
    do_noise = coin(cfg.p_noise)
    if do_noise.any():
        sd = uni(0, cfg.noise_std) * do_noise
        x = x + torch.randn(x.shape, generator=gen, device=dev) * sd[:, None, None, None]
    return x.contiguous(), y.contiguous()


def augment_volume_batch(x, y, cfg: AugmentConfig, gen, spacing_mm: float = 2.0, ignore_label: int | None = None):
    """Augment 3-D patches slice-consistently (the same in-plane transform in every slice).

    Parameters
    ----------
    x : (B, 1, H, W, D) float tensor, normalised image patches.
    y : (B, 1, H, W, D) long tensor, labels.
    cfg, gen, spacing_mm : as :func:`augment_batch`.
    ignore_label : label of unannotated / z-padded slices; a slice that is entirely ignored stays
        entirely ignored (the spatial transform would otherwise pull background in at its edges).

    Returns
    -------
    (x, y) augmented, same shapes and dtypes.
    """
    xs, ys = x[:, 0].permute(0, 3, 1, 2), y[:, 0].permute(0, 3, 1, 2)  # (B, D, H, W)
    xa, ya = augment_batch(xs, ys, cfg, gen, spacing_mm)
    if ignore_label is not None:
        blank = (ys == ignore_label).all(dim=3, keepdim=True).all(dim=2, keepdim=True)  # (B, D, 1, 1)
        ya = ya.masked_fill(blank, ignore_label)
    return xa.permute(0, 2, 3, 1)[:, None].contiguous(), ya.permute(0, 2, 3, 1)[:, None].contiguous()
