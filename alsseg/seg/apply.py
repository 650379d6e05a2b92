"""Segment image files with a model bundle and write the label maps: the API of ``alsseg segment``.

``OUT/<name>_desc-muscles_dseg.nii.gz`` per input (``<name>``: the input's file name without its
extension, or the DICOM folder's name), ``_desc-muscles_probseg.nii.gz`` and
``_desc-muscles_confidence.tsv`` (per-muscle confidence, :mod:`alsseg.seg.confidence`) when asked,
and ``OUT/dseg.tsv``. The model is loaded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

from alsseg.io.errors import InputError
from alsseg.seg.store import DEFAULT_MODEL


@dataclass(frozen=True)
class SegmentedFile:
    """One segmented input: its ``labels`` file (``probabilities`` and ``confidence`` files or
    None) and the number of distinct labels found."""

    source: str
    labels: Path
    probabilities: Path | None
    n_labels: int
    confidence: Path | None = None


def output_name(path: str | Path) -> str:
    """``sub-01_ses-01_echo-1_MESE.nii.gz`` → ``sub-01_ses-01_echo-1_MESE`` (folder: its name)."""
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def load_input(path: str | Path):
    """A NIfTI file (2-D/3-D/4-D) or a DICOM folder (a MESE series, else an anatomical image) → Image."""
    from alsseg.io.nifti import load_nifti

    from alsseg.io.validate import input_kind

    p = Path(path)
    if input_kind(p) == "dir":  # a FIFO, a device or a symlink loop is refused here, before opening
        from alsseg.io.series import load_mese

        try:
            return load_mese(p).image
        except InputError:
            from alsseg.io.series import load_anatomical

            return load_anatomical(p)
    return load_nifti(p, ndim=(2, 3, 4))


def _check_input(img, path) -> None:
    if img.data.ndim == 2:
        raise InputError(path, "is 2-D; a volume (3-D) or an echo series (4-D) is needed")


def segment_files(images: Sequence[str | Path], out_dir: str | Path, *, model: str = DEFAULT_MODEL,
                  probabilities: bool = False, confidence: bool = False, side: str | None = None,
                  mirror_tta: bool = True, device: str | None = None,
                  threads: int | None = None, progress: bool = True,
                  log: Callable[[str], None] | None = None) -> list[SegmentedFile]:
    """Segment each image with the bundle ``model`` and write its label map into ``out_dir``.

    Parameters
    ----------
    images : NIfTI files (3-D, or 4-D MESE: the model's echo is used) or DICOM folders.
    model : bundle name or path.
    probabilities : also write ``_desc-muscles_probseg`` (4-D float32, side-agnostic classes).
    confidence : also write ``_desc-muscles_confidence.tsv`` (one row per label found; a second,
        mirrored network pass, which ``mirror_tta`` runs anyway; with ``probabilities`` too, one
        more pass gives the probabilities).
    side : ``"R"``/``"L"`` when only one leg is in the image.
    mirror_tta : average each network's output on the image and on its left-right mirror
        (test-time augmentation, twice the network time; see ``Segmenter``); False: one pass.
    device : ``cpu``, ``cuda``, ``cuda:1`` … (None: a GPU when there is one).
    threads : CPU threads for torch (None: torch's choice).
    log : called with one line per image written.

    Raises
    ------
    InputError
        two inputs share a name, an output would overwrite an input, ``threads`` < 1, a missing
        or 2-D input, a bad bundle.
    """
    import numpy as np
    from alsseg.progress import progress_bar

    from alsseg.io.atomic import check_output_folder, refuse_overwrite_of_inputs, write_text_atomic
    from alsseg.io.nifti import save_nifti
    from alsseg.labels import dseg_tsv
    from alsseg.seg.confidence import confidence_tsv
    from alsseg.seg.infer import Segmenter, parse_device

    out = check_output_folder(out_dir)
    log = log or (lambda s: None)
    names = [output_name(p) for p in images]
    if len(set(names)) != len(names):
        raise InputError(None, "two inputs share a name; their outputs would collide")
    targets = [out / f"{n}_desc-muscles_dseg.nii.gz" for n in names]
    refuse_overwrite_of_inputs(targets, list(images))
    torch_device = parse_device(device) if device else None  # a device this machine lacks: one line
    if threads is not None:
        if threads < 1:
            raise InputError(None, "--threads must be >= 1")
        import torch

        torch.set_num_threads(threads)
    seg = Segmenter.from_bundle(model, device=torch_device, mirror_tta=mirror_tta)
    # every input is checked before anything is written (a bad last input leaves nothing behind)
    for path in images:
        _check_input(load_input(path), path)
    done = []
    for path in progress_bar(images, desc="segment", unit="image", show=progress and len(images) >= 2):
        img = load_input(path)
        probs, rows, n = None, None, output_name(path)
        if confidence:
            labels, rows = seg.predict_with_confidence(img, single_leg_side=side)
            if probabilities:
                probs = seg.predict_full(img, probabilities=True, single_leg_side=side)[1]
        else:
            labels, probs = seg.predict_full(img, probabilities=probabilities, single_leg_side=side)
        if not np.any(labels.data):
            raise InputError(path, f"the model {model} found no muscle (empty label map); nothing written "
                             "(is this a lower-leg image of a contrast the model knows?)")
        conf_path = None
        if rows is not None:
            conf_path = write_text_atomic(out / f"{n}_desc-muscles_confidence.tsv", confidence_tsv(rows))
        lab_path = save_nifti(labels, out / f"{n}_desc-muscles_dseg.nii.gz", dtype=np.uint8)
        prob_path = None
        if probs is not None:
            prob_path = save_nifti(probs, out / f"{n}_desc-muscles_probseg.nii.gz", dtype=np.float32)
        found = len(set(np.unique(labels.data).tolist()) - {0})
        done.append(SegmentedFile(str(path), Path(lab_path), prob_path, found, conf_path))
        log(f"{path}: {found} labels -> {out / f'{n}_desc-muscles_dseg.nii.gz'}")
    write_text_atomic(out / "dseg.tsv", dseg_tsv(seg.anatomy))
    return done
