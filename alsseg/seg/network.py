"""The network: a MONAI ``UNet`` built from a :class:`~alsseg.seg.recipe.NetworkConfig`."""

from __future__ import annotations

from alsseg.seg.recipe import NetworkConfig


def build_network(cfg: NetworkConfig, n_classes: int):
    """A MONAI ``UNet`` with one input channel and ``n_classes`` output logits.

    Parameters
    ----------
    cfg : network configuration (spatial_dims, channels, strides, residual units, norm, dropout).
    n_classes : number of output classes (background + side-agnostic muscles).
    """
    from monai.networks.nets import UNet

    return UNet(spatial_dims=cfg.spatial_dims, in_channels=1, out_channels=n_classes,
                channels=tuple(cfg.channels), strides=tuple(cfg.strides),
                num_res_units=cfg.num_res_units, norm=cfg.norm, dropout=cfg.dropout)


def masked_dice_ce(logits, target, ignore_index: int | None, dice_weight: float = 1.0, ce_weight: float = 1.0):
    """DiceCE loss that skips ignored voxels (sparse annotation).

    Parameters
    ----------
    logits : (B, C, ...) tensor.
    target : (B, 1, ...) long tensor; voxels equal to ``ignore_index`` count in neither term.

    Dice is MONAI's ``DiceLoss`` (batch Dice over foreground classes) on softmax probabilities
    and one-hot targets that are both zeroed at ignored voxels; CE is torch's with ``ignore_index``.
    """
    import torch
    import torch.nn.functional as F
    from monai.losses import DiceLoss

    n_classes = logits.shape[1]
    t = target[:, 0]
    if ignore_index is not None:
        valid = (t != ignore_index)
        t_clean = torch.where(valid, t, torch.zeros_like(t))
    else:
        valid = torch.ones_like(t, dtype=torch.bool)
        t_clean = t
    ce = F.cross_entropy(logits, t, ignore_index=ignore_index if ignore_index is not None else -100) \
        if valid.any() else logits.sum() * 0
    prob = torch.softmax(logits, 1) * valid[:, None]
    onehot = F.one_hot(t_clean, n_classes).movedim(-1, 1).to(prob.dtype) * valid[:, None]
    dice = DiceLoss(include_background=False, batch=True)(prob, onehot)
    return dice_weight * dice + ce_weight * ce
