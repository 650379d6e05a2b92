"""Inference: a :class:`Segmenter` holds a network and its preprocessing; ``predict`` maps an
image (3-D, or a 4-D echo series) to a side-specific label map on the input's own grid.

Network input is processed in chunks along z, so memory stays bounded whatever the volume
size: 2-D networks see chunks of slices (2-D sliding window with Gaussian blending inside each
slice); 3-D networks see D-slice windows on a fixed grid of z positions (overlapping by
``overlap``), a few windows per network call, each window tiled in-plane by MONAI's sliding
window and the windows blended along z with Gaussian weights. Either way the result comes out
as per-slice logits, so everything downstream is the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alsseg.io.errors import InputError
from alsseg.io.nifti import Image
from alsseg.labels import Anatomy, load_anatomy
from alsseg.seg.postprocess import postprocess
from alsseg.seg.preprocess import Prepared, prepare, restore_logits_slice
from alsseg.seg.recipe import NetworkConfig, PreprocessConfig
from alsseg.seg.store import DEFAULT_MODEL

#: axial slices sent through a 2-D network at once (bounds memory on huge volumes).
SLICE_CHUNK = 8
#: D-slice windows sent through a 3-D network at once (bounds memory on huge volumes).
WINDOW_CHUNK = 2


def auto_device():
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sliding_logits(model, data: np.ndarray, patch_size, device, chunk: int | None = None,
                   overlap: float = 0.25, context_slices: int = 0, use_context: bool = True):
    """Yield ``(z0, logits)`` with logits ``(k, C, X', Y')`` (torch, CPU) for runs of slices, in order.

    Parameters
    ----------
    data : (X', Y', Z) float32 preprocessed volume.
    patch_size : (H, W) window of a 2-D network, or (H, W, D) of a 3-D one.
    chunk : slices (2-D, default ``SLICE_CHUNK``) or D-slice windows (3-D, default
        ``WINDOW_CHUNK``) per network call.
    overlap : fraction of a window shared with its neighbour (in-plane, and along z in 3-D).
    context_slices : neighbours on each side fed as extra channels (2.5-D networks).
    use_context : False feeds the centre slice in every channel (slices too far apart).
    """
    if len(patch_size) == 3:
        yield from _sliding_logits_3d(model, data, patch_size, device, chunk or WINDOW_CHUNK, overlap)
        return
    import torch
    from monai.inferers import sliding_window_inference

    from alsseg.seg.slices import context_channels

    chunk = chunk or SLICE_CHUNK
    Z = data.shape[2]
    with torch.inference_mode():
        for z0 in range(0, Z, chunk):
            zs = np.arange(z0, min(Z, z0 + chunk))
            x = torch.from_numpy(context_channels(data, zs, context_slices, use_context)).to(device)
            out = sliding_window_inference(x, roi_size=tuple(patch_size), sw_batch_size=16, predictor=model,
                                           overlap=overlap, mode="gaussian", padding_mode="replicate")
            yield z0, out.float().cpu()


def z_window_starts(n_slices: int, depth: int, overlap: float) -> list[int]:
    """First slices of the D-slice windows covering ``n_slices >= depth`` slices: steps of
    ``round(D * (1 - overlap))`` (at least 1), the last window flush with the end."""
    if n_slices <= depth:
        return [0]
    step = max(1, int(round(depth * (1.0 - overlap))))
    return list(range(0, n_slices - depth, step)) + [n_slices - depth]


def z_blend_weights(depth: int):
    """Gaussian weights ``(D,)`` of a window's slices for blending along z (sigma D/4; centre 1)."""
    import torch

    z = torch.arange(depth, dtype=torch.float32) - (depth - 1) / 2.0
    return torch.exp(-0.5 * (z / max(depth / 4.0, 0.5)) ** 2)


def _sliding_logits_3d(model, data: np.ndarray, patch_size, device, chunk: int, overlap: float):
    """3-D sliding window: ``(z0, logits (k, C, X', Y'))`` for runs of finished slices.

    A volume with fewer than D slices is padded along z with its minimum (as in training) and
    the padding dropped from the output. Windows start on :func:`z_window_starts`; ``chunk`` of
    them go through the network per call (a batch for MONAI's in-plane sliding window, whose
    z extent is exactly D); their logits are blended along z with :func:`z_blend_weights`.
    Slices no later window touches are yielded and forgotten, so memory is bounded by
    ``chunk`` windows plus one window of accumulators, whatever Z. The result does not depend
    on ``chunk`` (each window is computed alone; blending follows window order).
    """
    import torch
    from monai.inferers import sliding_window_inference

    H, W, D = (int(p) for p in patch_size)
    Z = data.shape[2]
    before = (D - Z) // 2 if Z < D else 0
    vol = data if Z >= D else np.pad(data, ((0, 0), (0, 0), (before, D - Z - before)),
                                      constant_values=float(data.min()))
    starts = z_window_starts(vol.shape[2], D, overlap)
    weight = z_blend_weights(D)
    lo, num, den = 0, None, None  # accumulators for padded slices lo .. lo + len(den) - 1
    with torch.inference_mode():
        for g in range(0, len(starts), chunk):
            group = starts[g:g + chunk]
            x = torch.from_numpy(np.stack([vol[:, :, s:s + D] for s in group])[:, None]).to(device)
            out = sliding_window_inference(x, roi_size=(H, W, D), sw_batch_size=4, predictor=model,
                                           overlap=overlap, mode="gaussian", padding_mode="replicate")
            out = out.float().cpu()  # (n, C, X', Y', D)
            hi = group[-1] + D
            if num is None:
                num = torch.zeros(out.shape[1:4] + (hi - lo,))
                den = torch.zeros(hi - lo)
            elif hi - lo > den.shape[0]:
                grow = hi - lo - den.shape[0]
                num = torch.cat([num, torch.zeros(num.shape[:3] + (grow,))], 3)
                den = torch.cat([den, torch.zeros(grow)])
            for s, o in zip(group, out):
                num[..., s - lo:s - lo + D] += o * weight
                den[s - lo:s - lo + D] += weight
            done = (starts[g + chunk] if g + chunk < len(starts) else vol.shape[2]) - lo
            logits = (num[..., :done] / den[:done]).permute(3, 0, 1, 2)  # (done, C, X', Y')
            a, b = max(lo, before), min(lo + done, before + Z)  # drop z-padding
            if b > a:
                yield a - before, logits[a - lo:b - lo].contiguous()
            num, den, lo = num[..., done:], den[done:], lo + done


def predict_agnostic(model, prepared: Prepared, patch_size, device, n_classes: int,
                     probabilities: bool = False, network: NetworkConfig | None = None):
    """Side-agnostic classes ``(X, Y, Z)`` uint8 on the RAS grid (+ ``(X, Y, Z, C)`` probabilities).

    ``patch_size`` (H, W) or (H, W, D) picks the 2-D or 3-D sliding window; ``network`` (its
    ``context_slices``) says whether neighbouring slices go in as channels (2.5-D)."""
    import torch

    from alsseg.seg.slices import uses_context

    X, Y, Z = prepared.ras.shape[:3]
    labels = np.zeros((X, Y, Z), np.uint8)
    probs = np.zeros((X, Y, Z, n_classes), np.float32) if probabilities else None
    k = network.context_slices if network is not None else 0
    use = uses_context(k, prepared.ras.spacing_mm[2], network.max_context_spacing_mm) if k else False
    for z0, logits in sliding_logits(model, prepared.data, patch_size, device, context_slices=k, use_context=use):
        for i in range(logits.shape[0]):
            full = restore_logits_slice(logits[i], prepared)
            labels[:, :, z0 + i] = full.argmax(0).numpy().astype(np.uint8)
            if probabilities:
                probs[:, :, z0 + i] = torch.softmax(full, 0).permute(1, 2, 0).numpy()
    return labels, probs


@dataclass
class Segmenter:
    """A trained network with everything needed to predict.

    Build with :meth:`from_bundle` (a shipped or exported model) or :meth:`from_checkpoint`.
    """

    model: object
    preprocess: PreprocessConfig
    network: NetworkConfig
    patch_size: tuple[int, ...]
    anatomy: Anatomy
    device: object = None
    metadata: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return self.anatomy.n_muscles + 1

    @classmethod
    def from_bundle(cls, name_or_path: str | Path = "lowerleg-unet", device=None) -> "Segmenter":
        """Load a bundle by name (``models/NAME``) or path; checksum verified, ``weights_only``."""
        return load_bundle(name_or_path, device=device)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device=None) -> "Segmenter":
        """Load ``RUN/checkpoints/{best,last}.pt`` of a training run."""
        return load_checkpoint_segmenter(checkpoint, device=device)

    def predict(self, image: Image, *, single_leg_side: str | None = None, clean: bool = True) -> Image:
        """Label map on the input's grid.

        Parameters
        ----------
        image : 3-D image, or 4-D ``(X, Y, Z, E)`` series (volume ``preprocess.echo_index`` is used).
        single_leg_side : "R"/"L" to name the side when only one leg is in the field of view.
        clean : largest component per muscle per leg + holes filled.

        Returns
        -------
        Image with ``(X, Y, Z)`` uint8 side-specific label ids (see :mod:`alsseg.labels`).
        """
        return self.predict_full(image, single_leg_side=single_leg_side, clean=clean)[0]

    def predict_full(self, image: Image, *, probabilities: bool = False, single_leg_side: str | None = None,
                     clean: bool = True) -> tuple[Image, Image | None]:
        """``(labels, probabilities)``; probabilities ``(X, Y, Z, C)`` float32 of the side-agnostic
        classes (channel 0 background, then muscles in anatomy order), or ``None``."""
        from alsseg.seg.preprocess import select_volume

        prepared = prepare(image, self.preprocess)
        agn, probs = predict_agnostic(self.model, prepared, self.patch_size, self.device, self.n_classes,
                                      probabilities, self.network)
        ras = prepared.ras
        lab = postprocess(agn, ras.affine, ras.spacing_mm, self.anatomy, single_leg_side, clean)
        ref = select_volume(image, self.preprocess.echo_index)
        out = Image(lab, ras.affine).from_ras(ref)
        prob_img = None
        if probs is not None:
            prob_img = Image(probs, ras.affine).from_ras(ref)
        return Image(out.data, out.affine, None, {"model": self.metadata.get("name", "")}), prob_img


def build_segmenter(state_dict: dict, preprocess: PreprocessConfig, network: NetworkConfig, patch_size,
                    anatomy: str, device=None, metadata: dict | None = None) -> Segmenter:
    """Instantiate the network, load weights, put it in eval mode on ``device``."""
    from alsseg.seg.network import build_network

    anat = load_anatomy(anatomy)
    device = device or auto_device()
    model = build_network(network, anat.n_muscles + 1)
    model.load_state_dict(state_dict)
    model.to(device).eval()
    return Segmenter(model, preprocess, network, tuple(patch_size), anat, device, dict(metadata or {}))


def load_bundle(name_or_path: str | Path = DEFAULT_MODEL, device=None) -> Segmenter:
    """A :class:`~alsseg.seg.infer.Segmenter` from a bundle (checksum verified, weights_only)."""
    from alsseg.seg.recipe import recipe_from_dict
    from alsseg.seg.store import WEIGHTS, read_metadata, resolve_bundle, safe_load_weights

    bundle = resolve_bundle(name_or_path)
    meta = read_metadata(bundle)
    spec = meta.get("alsseg")
    if not isinstance(spec, dict):
        raise InputError(bundle / "configs" / "metadata.json", "no 'alsseg' block (not an alsseg bundle)")
    sha = meta.get("sha256", {}).get(WEIGHTS)
    if not sha:
        raise InputError(bundle / "configs" / "metadata.json", f"no sha256 recorded for {WEIGHTS}")
    state = safe_load_weights(bundle / WEIGHTS, sha)
    pre = recipe_from_dict({"preprocess": spec["preprocess"]}).preprocess
    net = recipe_from_dict({"network": spec["network"]}).network
    try:
        return build_segmenter(state, pre, net, spec["patch_size"], spec.get("anatomy", "lowerleg"), device,
                               {**meta, "name": meta.get("name", bundle.name), "path": str(bundle)})
    except RuntimeError as exc:
        raise InputError(bundle / WEIGHTS, f"weights do not fit the network ({str(exc).splitlines()[0][:160]})") from None


def load_checkpoint_segmenter(checkpoint: str | Path, device=None) -> Segmenter:
    """A Segmenter from a run's checkpoint file (``RUN/checkpoints/best.pt`` or ``last.pt``)."""
    from alsseg.seg.recipe import recipe_from_dict
    from alsseg.seg.store import load_run_spec, safe_load_weights

    checkpoint = Path(checkpoint)
    spec = load_run_spec(checkpoint.parent.parent)
    recipe = recipe_from_dict(spec["recipe"])
    pre = recipe_from_dict({"preprocess": spec.get("preprocess") or recipe.to_dict()["preprocess"]}).preprocess
    net = recipe_from_dict({"network": spec.get("network") or recipe.to_dict()["network"]}).network
    state = safe_load_weights(checkpoint)
    return build_segmenter(state, pre, net, recipe.train.patch_size, recipe.anatomy, device,
                           {"name": str(checkpoint)})
