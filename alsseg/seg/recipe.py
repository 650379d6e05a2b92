"""Training recipes: YAML files parsed once into frozen dataclasses; unknown keys are refused.

A recipe holds everything that decides a trained model: the preprocessing (target in-plane
spacing, normalisation), the network (MONAI ``UNet`` channels/strides/residual units), the
optimiser, the augmentation and the wall-clock / iteration budget. ``alsseg train --recipe R``
reads one; the bundle exported from a run stores the recipe it was trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alsseg.io.errors import InputError


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes network input (the same code path at training and inference).

    Attributes:
        target_spacing_mm: in-plane voxel size (x, y) after resampling, mm; slices are kept.
        clip_percentiles: intensity percentiles clipped before normalisation.
        echo_index: which volume of a 4-D input (e.g. a MESE echo train) is segmented; 0 = echo 1.
        crop_margin_mm: margin kept around the body's bounding box by the foreground crop, mm.
    """

    target_spacing_mm: tuple[float, float] = (2.0, 2.0)
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    echo_index: int = 0
    crop_margin_mm: float = 10.0


@dataclass(frozen=True)
class NetworkConfig:
    """A MONAI ``UNet`` (``spatial_dims`` 2 = axial slices, 3 = volumes).

    ``strides``: one entry per level, an integer or (3-D) a list with one stride per axis
    ``[x, y, z]``, e.g. ``[[2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]`` downsamples thick-slice
    volumes in-plane first (the patch size must be divisible by the product per axis).

    ``context_slices`` k > 0 makes a 2-D network 2.5-D: it sees the k slices above and below
    as extra input channels (``2k + 1`` in all; edges replicate the nearest slice) and still
    predicts the centre slice. Where the slice spacing exceeds ``max_context_spacing_mm`` the
    neighbours say little about the centre slice, so inference feeds the centre slice in every
    channel (training teaches that mode with ``augment.p_context_drop``).
    """

    spatial_dims: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    strides: tuple = (2, 2, 2, 2)
    num_res_units: int = 2
    dropout: float = 0.0
    norm: str = "instance"
    context_slices: int = 0
    max_context_spacing_mm: float = 15.0

    @property
    def in_channels(self) -> int:
        """Input channels of the network: ``2 * context_slices + 1``."""
        return 2 * self.context_slices + 1


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the on-the-fly augmentation (see :mod:`alsseg.seg.augment`)."""

    p_affine: float = 0.8
    rotate_deg: float = 20.0
    scale_range: tuple[float, float] = (0.8, 1.25)
    p_elastic: float = 0.4
    elastic_mm: float = 6.0
    p_flip_lr: float = 0.5
    p_bias: float = 0.5
    bias_strength: float = 0.4
    p_gamma: float = 0.5
    gamma_range: tuple[float, float] = (0.6, 1.6)
    p_noise: float = 0.4
    noise_std: float = 0.15
    p_lowres: float = 0.3
    lowres_factor: tuple[float, float] = (1.0, 2.0)
    p_invert: float = 0.0
    p_context_drop: float = 0.2


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and budget. ``patch_size``: (H, W) voxels for 2-D/2.5-D networks,
    (H, W, D) — D slices — for 3-D ones.

    ``init_preprocess`` decides the preprocessing of a fine-tuning run (``alsseg train
    --init``): ``"bundle"`` keeps the bundle's (the default: the weights were learned for it),
    ``"recipe"`` takes the recipe's ``preprocess`` section, e.g. to move a model to a finer
    in-plane spacing. The network architecture always comes from the bundle."""

    seed: int = 0
    patch_size: tuple[int, ...] = (128, 128)
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    iterations: int = 2000
    iterations_per_epoch: int = 100
    max_minutes: float | None = None
    val_every_epochs: int = 1
    foreground_fraction: float = 0.9
    num_threads: int = 2
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    init_preprocess: str = "bundle"


@dataclass(frozen=True)
class Recipe:
    """A whole training recipe (one YAML file)."""

    name: str = "model"
    description: str = ""
    anatomy: str = "lowerleg"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-data form (tuples as lists), the inverse of :func:`recipe_from_dict`."""
        return _plain(dataclasses.asdict(self))


_SECTIONS = {"preprocess": PreprocessConfig, "network": NetworkConfig,
             "augment": AugmentConfig, "train": TrainConfig}


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _build(cls, values: Any, where: str, path) -> Any:
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise InputError(path, f"recipe section {where!r} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(path, f"unknown recipe key(s) {', '.join(where + '.' + k for k in unknown)} "
                               f"(allowed: {', '.join(sorted(known))})")
    kwargs = {}
    defaults = cls()
    for k, v in values.items():
        default = getattr(defaults, k)
        if isinstance(default, tuple):
            if not isinstance(v, (list, tuple)):
                raise InputError(path, f"recipe key {where}.{k} must be a list, got {v!r}")
            v = tuple(tuple(e) if isinstance(e, list) else e for e in v)
        elif isinstance(default, bool):
            if not isinstance(v, bool):
                raise InputError(path, f"recipe key {where}.{k} must be true/false, got {v!r}")
        elif isinstance(default, (int, float)) or (default is None and v is not None):
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise InputError(path, f"recipe key {where}.{k} must be a number, got {v!r}")
            if isinstance(default, int):
                if float(v) != int(v):
                    raise InputError(path, f"recipe key {where}.{k} must be an integer, got {v!r}")
                v = int(v)
            else:
                v = float(v)
        elif isinstance(default, str) and not isinstance(v, str):
            raise InputError(path, f"recipe key {where}.{k} must be a string, got {v!r}")
        kwargs[k] = v
    return cls(**kwargs)


def recipe_from_dict(values: dict, path: str | Path | None = None) -> Recipe:
    """Build a :class:`Recipe` from plain data; unknown keys raise :class:`InputError`."""
    if not isinstance(values, dict):
        raise InputError(path, "a recipe must be a YAML mapping")
    top = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(values) - top)
    if unknown:
        raise InputError(path, f"unknown recipe key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(top))})")
    kwargs = {k: v for k, v in values.items() if k not in _SECTIONS}
    for k in ("name", "description", "anatomy"):
        if k in kwargs and not isinstance(kwargs[k], str):
            raise InputError(path, f"recipe key {k} must be a string")
    if "data" in kwargs and not isinstance(kwargs["data"], dict):
        raise InputError(path, "recipe key data must be a mapping")
    for sec, cls in _SECTIONS.items():
        kwargs[sec] = _build(cls, values.get(sec), sec, path)
    recipe = Recipe(**kwargs)
    # a dict without a train section is a partial recipe (a bundle's network or preprocessing
    # block parsed alone): the patch size it would be checked against is not part of it
    _check(recipe, path, check_patch="train" in values)
    return recipe


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def stride_factors(strides, spatial_dims: int) -> tuple[int, ...]:
    """Total downsampling per axis: the product of the strides of every level, ``(spatial_dims,)``."""
    factors = [1] * spatial_dims
    for s in strides:
        per_axis = [s] * spatial_dims if _is_int(s) else list(s)
        factors = [f * p for f, p in zip(factors, per_axis)]
    return tuple(factors)


def _check(r: Recipe, path, check_patch: bool = True) -> None:
    n = r.network
    if n.spatial_dims not in (2, 3):
        raise InputError(path, f"network.spatial_dims must be 2 or 3, got {n.spatial_dims}")
    if n.context_slices < 0 or (n.context_slices and n.spatial_dims != 2):
        raise InputError(path, f"network.context_slices must be >= 0 and needs spatial_dims 2, got "
                               f"{n.context_slices} with spatial_dims {n.spatial_dims}")
    if n.max_context_spacing_mm <= 0:
        raise InputError(path, "network.max_context_spacing_mm must be positive")
    if len(n.strides) != len(n.channels) - 1:
        raise InputError(path, "network.strides must have one entry fewer than network.channels")
    for s in n.strides:
        ok = (_is_int(s) and s >= 1) or (isinstance(s, tuple) and len(s) == n.spatial_dims
                                         and all(_is_int(e) and e >= 1 for e in s))
        if not ok:
            raise InputError(path, f"network.strides entry {list(s) if isinstance(s, tuple) else s!r} must be a "
                                   f"positive integer or a list of {n.spatial_dims} positive integers")
    if not all(_is_int(p) and p >= 1 for p in r.train.patch_size):
        raise InputError(path, f"train.patch_size {_plain(r.train.patch_size)} must be positive integers")
    if check_patch:
        _check_patch(r, path)
    if len(r.preprocess.target_spacing_mm) != 2 or min(r.preprocess.target_spacing_mm) <= 0:
        raise InputError(path, "preprocess.target_spacing_mm must be two positive numbers")
    if r.train.batch_size < 1 or r.train.iterations < 1:
        raise InputError(path, "train.batch_size and train.iterations must be >= 1")
    if r.train.init_preprocess not in ("bundle", "recipe"):
        raise InputError(path, f"train.init_preprocess must be 'bundle' or 'recipe', got {r.train.init_preprocess!r}")


def _check_patch(r: Recipe, path) -> None:
    """Patch size: one entry per spatial axis ((H, W) or (H, W, D)), each divisible by the
    network's downsampling along that axis."""
    n, patch = r.network, list(r.train.patch_size)
    if len(patch) != n.spatial_dims:
        shape = "[H, W]" if n.spatial_dims == 2 else "[H, W, D] (D slices)"
        raise InputError(path, f"train.patch_size needs {n.spatial_dims} entries {shape} for spatial_dims "
                               f"{n.spatial_dims}, got {patch}")
    factors = stride_factors(n.strides, n.spatial_dims)
    if any(p % f for p, f in zip(patch, factors)):
        need = factors[0] if len(set(factors)) == 1 else list(factors)
        raise InputError(path, f"train.patch_size {patch} must be divisible by {need} (the product of "
                               "network.strides per axis)")


def load_recipe(path: str | Path) -> Recipe:
    """Read a YAML recipe.

    Raises:
        InputError: missing or unreadable file, unknown keys, wrong types, inconsistent values.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such recipe file")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None
    return recipe_from_dict(values or {}, path)
