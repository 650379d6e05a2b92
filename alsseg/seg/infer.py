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
from typing import TYPE_CHECKING

import numpy as np

from alsseg.io.errors import InputError
from alsseg.io.nifti import Image
from alsseg.labels import Anatomy, load_anatomy
from alsseg.seg.blend import mean_with_mirrored, mean_with_neighbours
from alsseg.seg.postprocess import postprocess
from alsseg.seg.preprocess import Prepared, prepare, upsample_logits_slice
from alsseg.seg.recipe import NetworkConfig, PreprocessConfig
from alsseg.seg.store import DEFAULT_MODEL

if TYPE_CHECKING:
    import torch

#: axial slices sent through a 2-D network at once (bounds memory on huge volumes).
SLICE_CHUNK = 8
#: D-slice windows sent through a 3-D network at once (bounds memory on huge volumes).
WINDOW_CHUNK = 2
#: a 2-D network's softmax is averaged over each slice and its two neighbours where slices are at
#: most this far apart (centre to centre, mm): neighbours then show nearly the same anatomy, and
#: the average removes slice-to-slice flicker and specks (measured in docs/seg.md; on held-out
#: synthetic volumes with 6-10 mm slices it did not help, so it is not done there).
SMOOTH_MAX_SLICE_SPACING_MM = 6.0


def auto_device():
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def parse_device(text: str | None):
    """A torch device from ``--device`` text (``cpu``, ``cuda``, ``cuda:1``); ``None`` → :func:`auto_device`.

    Raises:
        InputError: not a device name, or a GPU asked for that this machine does not have.
    """
    import re

    import torch

    from alsseg.io.errors import InputError

    if text is None:
        return auto_device()
    m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", str(text).strip())
    if not m or (m.group(1) == "cpu" and m.group(2)):
        raise InputError(None, f"--device {text!r}: expected cpu, cuda or cuda:N")
    if m.group(1) == "cpu":
        return torch.device("cpu")
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(m.group(2) or 0)
    if index >= n:
        have = f"{n} GPU(s) visible" if n else "no GPU is visible on this machine"
        raise InputError(None, f"--device {text}: {have}; use --device cpu")
    return torch.device("cuda", index)


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
            yield z0, _tensor(out).float().cpu()


def _tensor(out: object) -> torch.Tensor:
    """MONAI's sliding-window result for a network that returns one tensor (as alsseg's do)."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the network returned {type(out).__name__}, expected one tensor of logits")
    return out


def z_window_starts(n_slices: int, depth: int, overlap: float) -> list[int]:
    """First slices of the D-slice windows covering ``n_slices >= depth`` slices: steps of
    ``round(D * (1 - overlap))`` (at least 1), the last window flush with the end."""
    if n_slices <= depth:
        return [0]
    step = max(1, round(float(depth * (1.0 - overlap))))
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
            out = _tensor(out).float().cpu()  # (n, C, X', Y', D)
            hi = group[-1] + D
            if num is None or den is None:
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


@dataclass
class AgnosticPass:
    """One network pass over a prepared volume, on the RAS grid.

    Attributes:
        labels: ``(X, Y, Z)`` uint8 side-agnostic classes (argmax).
        probabilities: ``(X, Y, Z, C)`` float32 softmax, or None.
        max_probability: ``(X, Y, Z)`` float32 softmax of the winning class, or None.
        mirrored_labels: ``(X, Y, Z)`` uint8 classes of the mirrored pass alone (the one a
            ``mirror_average`` pass runs anyway), or None.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None = None
    max_probability: np.ndarray | None = None
    mirrored_labels: np.ndarray | None = None


def agnostic_pass(model, prepared: Prepared, patch_size, device, n_classes: int,
                  network: NetworkConfig | None = None, *, probabilities: bool = False,
                  max_probability: bool = False, flip_x: bool = False,
                  mirror_average: bool = False, mirrored_labels: bool = False,
                  smooth_slices: bool = False) -> AgnosticPass:
    """Side-agnostic classes on the RAS grid from one pass of the network over ``prepared``.

    ``patch_size`` (H, W) or (H, W, D) picks the 2-D or 3-D sliding window; ``network`` (its
    ``context_slices``) says whether neighbouring slices go in as channels (2.5-D).

    ``flip_x`` mirrors the input left-right before the network and the logits back after it
    (a test-time augmentation: the classes are side-agnostic, so no label changes side).
    ``mirror_average`` runs the network on the input and on its mirror and averages the two
    softmax outputs slice by slice (twice the network time; no extra memory); with
    ``mirrored_labels`` it also keeps the mirrored pass's own classes (what a separate ``flip_x``
    pass would give, without running it).

    ``smooth_slices`` averages a 2-D network's softmax over each slice and its two neighbours
    (:func:`alsseg.seg.blend.mean_with_neighbours`) when the slices are at most ``SMOOTH_MAX_SLICE_SPACING_MM``
    apart; farther apart, or for a 3-D network, it does nothing.
    """
    import torch

    from alsseg.seg.slices import uses_context

    X, Y, Z = prepared.ras.shape[:3]
    # outside the crop box the background is certain: class 0, probability 1
    x0, x1, y0, y1 = prepared.crop
    box = (slice(x0, x1), slice(y0, y1))
    labels = np.zeros((X, Y, Z), np.uint8)
    probs = None
    if probabilities:
        probs = np.zeros((X, Y, Z, n_classes), np.float32)
        probs[..., 0] = 1.0
    pmax = np.ones((X, Y, Z), np.float32) if max_probability else None
    k = network.context_slices if network is not None else 0
    use = bool(k) and network is not None and uses_context(k, prepared.ras.spacing_mm[2],
                                                           network.max_context_spacing_mm)
    if flip_x and mirror_average:
        raise ValueError("flip_x and mirror_average exclude each other")
    if mirrored_labels and not mirror_average:
        raise ValueError("mirrored_labels needs mirror_average")
    mlabels = np.zeros((X, Y, Z), np.uint8) if mirrored_labels else None
    def mirrored():
        return np.ascontiguousarray(prepared.data[::-1])

    single = sliding_logits(model, mirrored() if flip_x else prepared.data, patch_size, device, context_slices=k,
                            use_context=use)
    if mirror_average:
        other = sliding_logits(model, mirrored(), patch_size, device, context_slices=k, use_context=use)
        stream = mean_with_mirrored(single, other)
    else:
        stream = ((z0, logits, None) for z0, logits in single)
    if smooth_slices and len(patch_size) == 2 and Z > 1 \
            and float(prepared.ras.spacing_mm[2]) <= SMOOTH_MAX_SLICE_SPACING_MM:
        stream = mean_with_neighbours(stream)
    # one inference-mode block round the whole pass: two interleaved generators that each enter and
    # leave inference mode would otherwise leave it switched on for the caller (no gradients after)
    with torch.inference_mode():
        for z0, logits, mirrored_logits in stream:
            if flip_x:
                logits = torch.flip(logits, dims=[2])
            for i in range(logits.shape[0]):
                z = z0 + i
                up = upsample_logits_slice(logits[i], prepared)
                labels[box + (z,)] = up.argmax(0).numpy()
                if mlabels is not None:
                    mlabels[box + (z,)] = upsample_logits_slice(mirrored_logits[i], prepared).argmax(0).numpy()
                if probabilities or max_probability:
                    sm = torch.softmax(up, 0)
                    if probs is not None:
                        probs[box + (z,)] = sm.permute(1, 2, 0).numpy()
                    if pmax is not None:
                        pmax[box + (z,)] = sm.max(0).values.numpy()
    return AgnosticPass(labels, probs, pmax, mlabels)


@dataclass
class Segmenter:
    """A trained network with everything needed to predict.

    Build with :meth:`from_bundle` (a shipped or exported model) or :meth:`from_checkpoint`.
    ``mirror_tta`` (default on): every prediction averages each network's output on the image and
    on its left-right mirror (test-time augmentation; twice the network time; chosen by the real
    benchmark, docs/seg.md). False: one pass per network. ``smooth_slices`` (default on): a 2-D
    network's softmax is averaged over neighbouring slices where they are at most
    ``SMOOTH_MAX_SLICE_SPACING_MM`` apart (see :func:`agnostic_pass`).
    """

    model: torch.nn.Module
    preprocess: PreprocessConfig
    network: NetworkConfig
    patch_size: tuple[int, ...]
    anatomy: Anatomy
    device: object = None
    metadata: dict = field(default_factory=dict)
    mirror_tta: bool = True
    smooth_slices: bool = True

    @property
    def n_classes(self) -> int:
        return self.anatomy.n_muscles + 1

    @property
    def networks(self) -> list:
        """The networks behind :attr:`model`: an ensemble's members in bundle order, else ``[model]``."""
        return list(getattr(self.model, "members", None) or [self.model])

    @classmethod
    def from_bundle(cls, name_or_path: str | Path = "lowerleg-unet", device=None, mirror_tta: bool = True) -> Segmenter:
        """Load a bundle by name (``models/NAME``) or path; checksum verified, ``weights_only``;
        ``mirror_tta`` see the class."""
        seg = load_bundle(name_or_path, device=device)
        seg.mirror_tta = mirror_tta
        return seg

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, device=None, mirror_tta: bool = True) -> Segmenter:
        """Load ``RUN/checkpoints/{best,last}.pt`` of a training run; ``mirror_tta`` see the class."""
        seg = load_checkpoint_segmenter(checkpoint, device=device)
        seg.mirror_tta = mirror_tta
        return seg

    def predict(self, image: Image, *, single_leg_side: str | None = None, clean: bool = True,
                return_confidence: bool = False):
        """Label map on the input's grid.

        Parameters
        ----------
        image : 3-D image, or 4-D ``(X, Y, Z, E)`` series (volume ``preprocess.echo_index`` is used).
        single_leg_side : "R"/"L" to name the side when only one leg is in the field of view.
        clean : largest component per muscle per leg + holes filled.
        return_confidence : also return the per-muscle confidence table (see
            :mod:`alsseg.seg.confidence`; costs a second, mirrored network pass).

        Returns
        -------
        Image with ``(X, Y, Z)`` uint8 side-specific label ids (see :mod:`alsseg.labels`); with
        ``return_confidence``, ``(Image, rows)``: one dict per label found, ``label, muscle, side,
        seg_confidence`` (in [0, 1]) and the signals it is made of.
        """
        if return_confidence:
            return self.predict_with_confidence(image, single_leg_side=single_leg_side, clean=clean)
        return self.predict_full(image, single_leg_side=single_leg_side, clean=clean)[0]

    def predict_with_confidence(self, image: Image, *, single_leg_side: str | None = None,
                                clean: bool = True) -> tuple[Image, list[dict]]:
        """``(labels, confidence rows)``: the labels of :meth:`predict` (same pass, same result) and
        :func:`alsseg.seg.confidence.confidence_rows` from it and a left-right mirrored pass (with
        ``mirror_tta``, the mirrored half of the averaged pass: two network passes, not three)."""
        from alsseg.seg.confidence import confidence_rows
        from alsseg.seg.preprocess import select_volume

        prepared = prepare(image, self.preprocess)
        ras = prepared.ras
        args = (self.model, prepared, self.patch_size, self.device, self.n_classes, self.network)
        smooth = self.smooth_slices
        if self.mirror_tta:  # the averaged pass ran the mirrored one already
            main = agnostic_pass(*args, max_probability=True, mirror_average=True, mirrored_labels=True,
                                 smooth_slices=smooth)
            mirrored_labels = main.mirrored_labels
        else:
            main = agnostic_pass(*args, max_probability=True, smooth_slices=smooth)
            mirrored_labels = agnostic_pass(*args, flip_x=True, smooth_slices=smooth).labels
        assert mirrored_labels is not None  # asked for above
        lab = postprocess(main.labels, ras.affine, ras.spacing_mm, self.anatomy, single_leg_side, clean)
        lab_m = postprocess(mirrored_labels, ras.affine, ras.spacing_mm, self.anatomy, single_leg_side, clean)
        assert main.max_probability is not None  # asked for above
        rows = confidence_rows(lab, main.max_probability, lab_m, self.anatomy)
        ref = select_volume(image, self.preprocess.echo_index)
        out = Image(lab, ras.affine).from_ras(ref)
        return Image(out.data, out.affine, None, {"model": self.metadata.get("name", "")}), rows

    def predict_full(self, image: Image, *, probabilities: bool = False, single_leg_side: str | None = None,
                     clean: bool = True) -> tuple[Image, Image | None]:
        """``(labels, probabilities)``; probabilities ``(X, Y, Z, C)`` float32 of the side-agnostic
        classes (channel 0 background, then muscles in anatomy order), or ``None``."""
        from alsseg.seg.preprocess import select_volume

        prepared = prepare(image, self.preprocess)
        passed = agnostic_pass(self.model, prepared, self.patch_size, self.device, self.n_classes, self.network,
                               probabilities=probabilities, mirror_average=self.mirror_tta,
                               smooth_slices=self.smooth_slices)
        agn, probs = passed.labels, passed.probabilities
        ras = prepared.ras
        lab = postprocess(agn, ras.affine, ras.spacing_mm, self.anatomy, single_leg_side, clean)
        ref = select_volume(image, self.preprocess.echo_index)
        out = Image(lab, ras.affine).from_ras(ref)
        prob_img = None
        if probs is not None:
            prob_img = Image(probs, ras.affine).from_ras(ref)
        return Image(out.data, out.affine, None, {"model": self.metadata.get("name", "")}), prob_img


def build_segmenter(state_dict: dict | list[dict], preprocess: PreprocessConfig, network: NetworkConfig, patch_size,
                    anatomy: str, device=None, metadata: dict | None = None) -> Segmenter:
    """Instantiate the network, load weights, put it in eval mode on ``device``; a list of state
    dicts builds an ensemble (:class:`~alsseg.seg.network.MeanProbabilityEnsemble`)."""
    from alsseg.seg.network import MeanProbabilityEnsemble, build_network

    anat = load_anatomy(anatomy)
    device = device or auto_device()
    states = state_dict if isinstance(state_dict, list) else [state_dict]
    nets = []
    for state in states:
        net = build_network(network, anat.n_muscles + 1)
        net.load_state_dict(state)
        nets.append(net)
    model = nets[0] if len(nets) == 1 else MeanProbabilityEnsemble(nets)
    model.to(device).eval()
    return Segmenter(model, preprocess, network, tuple(patch_size), anat, device, dict(metadata or {}))


def load_bundle(name_or_path: str | Path = DEFAULT_MODEL, device=None) -> Segmenter:
    """A :class:`~alsseg.seg.infer.Segmenter` from a bundle (checksum verified, weights_only)."""
    from alsseg.seg.recipe import recipe_from_dict
    from alsseg.seg.store import WEIGHTS, check_metadata, read_metadata, resolve_bundle, safe_load_weights

    bundle = resolve_bundle(name_or_path)
    meta_path = bundle / "configs" / "metadata.json"
    meta = read_metadata(bundle)
    spec = check_metadata(meta, meta_path)
    members = spec.get("members", [WEIGHTS])
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise InputError(meta_path, "'alsseg.members' must be a list of weight files")
    state = []
    for member in members:
        sha = meta["sha256"].get(member)
        if not isinstance(sha, str) or not sha:
            raise InputError(meta_path, f"no sha256 recorded for {member}")
        if Path(member).is_absolute() or ".." in Path(member).parts:
            raise InputError(meta_path, f"member {member!r} is outside the bundle")
        state.append(safe_load_weights(bundle / member, sha))
    try:
        pre = recipe_from_dict({"preprocess": spec["preprocess"]}, meta_path).preprocess
        net = recipe_from_dict({"network": spec["network"]}, meta_path).network
    except InputError as exc:  # always name the bundle
        raise InputError(meta_path, exc.problem) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(meta_path, f"malformed alsseg block ({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        return build_segmenter(state, pre, net, spec["patch_size"], spec.get("anatomy", "lowerleg"), device,
                               {**meta, "name": meta.get("name", bundle.name), "path": str(bundle)})
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(bundle / WEIGHTS, f"weights do not fit the network described in {meta_path.name} "
                         f"({first})") from None


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
