"""Inference: a :class:`Segmenter` holds a network and its preprocessing; ``predict`` maps an
image (3-D, or a 4-D echo series) to a side-specific label map on the input's own grid.

Network input is processed slice by slice in chunks (2-D sliding window with Gaussian
blending inside each slice), so memory stays bounded whatever the volume size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alsseg.io.nifti import Image
from alsseg.labels import Anatomy, load_anatomy
from alsseg.seg.postprocess import postprocess
from alsseg.seg.preprocess import Prepared, prepare, restore_logits_slice
from alsseg.seg.recipe import NetworkConfig, PreprocessConfig

#: axial slices sent through the network at once (bounds memory on huge volumes).
SLICE_CHUNK = 8


def auto_device():
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sliding_logits(model, data: np.ndarray, patch_size, device, chunk: int = SLICE_CHUNK,
                   overlap: float = 0.25, context_slices: int = 0, use_context: bool = True):
    """Yield ``(z0, logits)`` with logits ``(k, C, X', Y')`` (torch, CPU) for chunks of slices.

    Parameters
    ----------
    data : (X', Y', Z) float32 preprocessed volume.
    patch_size : (H, W) network window.
    context_slices : neighbours on each side fed as extra channels (2.5-D networks).
    use_context : False feeds the centre slice in every channel (slices too far apart).
    """
    import torch
    from monai.inferers import sliding_window_inference

    from alsseg.seg.slices import context_channels

    Z = data.shape[2]
    with torch.inference_mode():
        for z0 in range(0, Z, chunk):
            zs = np.arange(z0, min(Z, z0 + chunk))
            x = torch.from_numpy(context_channels(data, zs, context_slices, use_context)).to(device)
            out = sliding_window_inference(x, roi_size=tuple(patch_size), sw_batch_size=16, predictor=model,
                                           overlap=overlap, mode="gaussian", padding_mode="replicate")
            yield z0, out.float().cpu()


def uses_context(network: NetworkConfig, spacing_mm) -> bool:
    """Whether a 2.5-D network gets real neighbours: slice spacing (``spacing_mm[2]``, mm) at most
    ``network.max_context_spacing_mm``."""
    return network.context_slices > 0 and float(spacing_mm[2]) <= network.max_context_spacing_mm


def predict_agnostic(model, prepared: Prepared, patch_size, device, n_classes: int,
                     probabilities: bool = False, network: NetworkConfig | None = None):
    """Side-agnostic classes ``(X, Y, Z)`` uint8 on the RAS grid (+ ``(X, Y, Z, C)`` probabilities).

    ``network`` (its ``context_slices``) says whether neighbouring slices go in as channels."""
    import torch

    X, Y, Z = prepared.ras.shape[:3]
    labels = np.zeros((X, Y, Z), np.uint8)
    probs = np.zeros((X, Y, Z, n_classes), np.float32) if probabilities else None
    k = network.context_slices if network is not None else 0
    use = k == 0 or uses_context(network, prepared.ras.spacing_mm)
    for z0, logits in sliding_logits(model, prepared.data, patch_size, device, context_slices=k, use_context=use):
        for k in range(logits.shape[0]):
            full = restore_logits_slice(logits[k], prepared)
            labels[:, :, z0 + k] = full.argmax(0).numpy().astype(np.uint8)
            if probabilities:
                probs[:, :, z0 + k] = torch.softmax(full, 0).permute(1, 2, 0).numpy()
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
        from alsseg.seg.bundle import load_bundle

        return load_bundle(name_or_path, device=device)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device=None) -> "Segmenter":
        """Load ``RUN/checkpoints/{best,last}.pt`` of a training run."""
        from alsseg.seg.bundle import load_checkpoint_segmenter

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
