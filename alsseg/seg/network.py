"""The network: a MONAI ``UNet`` built from a :class:`~alsseg.seg.recipe.NetworkConfig`."""

from __future__ import annotations

from alsseg.seg.recipe import NetworkConfig


def build_network(cfg: NetworkConfig, n_classes: int):
    """A MONAI ``UNet`` with ``cfg.in_channels`` inputs and ``n_classes`` output logits.

    Parameters
    ----------
    cfg : network configuration (spatial_dims, channels, strides — an integer or, in 3-D, one
        stride per axis per level —, residual units, norm, dropout, context slices).
    n_classes : number of output classes (background + side-agnostic muscles).
    """
    from monai.networks.nets import UNet

    return UNet(spatial_dims=cfg.spatial_dims, in_channels=cfg.in_channels, out_channels=n_classes,
                channels=tuple(cfg.channels), strides=tuple(cfg.strides),
                num_res_units=cfg.num_res_units, norm=cfg.norm, dropout=cfg.dropout)


def inflate_input_channels(state: dict, target: dict) -> dict:
    """Weights of a network with fewer input channels, fitted to one with more (2-D → 2.5-D).

    Tensors that read the input (shape ``(out, c_old, ...)`` in ``state``, ``(out, c_new, ...)``
    in ``target``, both odd, ``c_new > c_old``) are copied into the centre input channels and the
    new neighbour channels start at zero, so the inflated network computes exactly what the
    original did while it learns to use the neighbours. Every other tensor must match in shape.

    Parameters
    ----------
    state : source ``state_dict`` (e.g. a 2-D bundle's).
    target : the new network's ``state_dict`` (shapes and names).

    Raises
    ------
    ValueError
        names differ, or a shape differs otherwise than in the input channels.
    """
    import torch

    if set(state) != set(target):
        raise ValueError("the networks have different layers")
    out = {}
    for k, v in state.items():
        t = target[k]
        if v.shape == t.shape:
            out[k] = v.clone()
            continue
        if (v.ndim != t.ndim or v.ndim < 3 or v.shape[0] != t.shape[0] or v.shape[2:] != t.shape[2:]
                or v.shape[1] % 2 == 0 or t.shape[1] % 2 == 0 or t.shape[1] < v.shape[1]):
            raise ValueError(f"layer {k}: shape {tuple(v.shape)} cannot be inflated to {tuple(t.shape)}")
        w = torch.zeros(t.shape, dtype=v.dtype)
        c0 = (t.shape[1] - v.shape[1]) // 2
        w[:, c0:c0 + v.shape[1]] = v
        out[k] = w
    return out


def masked_dice_ce(logits, target, ignore_index: int | None, dice_weight: float = 1.0, ce_weight: float = 1.0):
    """DiceCE loss that skips ignored voxels (sparse annotation).

    Parameters
    ----------
    logits : (B, C, H, W) or (B, C, H, W, D) tensor.
    target : (B, 1, H, W) or (B, 1, H, W, D) long tensor; voxels equal to ``ignore_index``
        (e.g. z-padding of a 3-D patch) count in neither term.

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


def _ensemble_class():
    import torch

    class MeanProbabilityEnsemble(torch.nn.Module):
        """Several networks of one architecture; ``forward`` returns the log of the mean of their
        softmax probabilities ``(N, C, ...)``, so argmax and softmax of the output are the
        ensemble's averaged prediction (sliding-window inference is unchanged)."""

        def __init__(self, members):
            super().__init__()
            self.members = torch.nn.ModuleList(members)

        def forward(self, x):
            probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)
            return torch.log(probs.clamp_min(1e-8))

    return MeanProbabilityEnsemble


def __getattr__(name):  # torch is imported lazily: the class is built on first use
    if name == "MeanProbabilityEnsemble":
        cls = _ensemble_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)
