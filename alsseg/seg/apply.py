"""Segment image files with a model bundle and write the label maps: the API of ``alsseg segment``.

``OUT/<name>_desc-muscles_dseg.nii.gz`` per input (``<name>``: the input's file name without its
extension, or the DICOM folder's name), ``_desc-muscles_probseg.nii.gz`` when asked, and
``OUT/dseg.tsv``. The model is loaded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from alsseg.io.errors import InputError
from alsseg.seg.store import DEFAULT_MODEL


@dataclass(frozen=True)
class SegmentedFile:
    """One segmented input: its ``labels`` file (and ``probabilities`` file or None) and the
    number of distinct labels found."""

    source: str
    labels: Path
    probabilities: Path | None
    n_labels: int


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

    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file or folder")
    if p.is_dir():
        from alsseg.io.series import load_mese

        try:
            return load_mese(p).image
        except InputError:
            from alsseg.io.series import load_anatomical

            return load_anatomical(p)
    return load_nifti(p, ndim=(2, 3, 4))


def segment_files(images: Sequence[str | Path], out_dir: str | Path, *, model: str = DEFAULT_MODEL,
                  probabilities: bool = False, side: str | None = None, device: str | None = None,
                  threads: int | None = None, progress: bool = True,
                  log: Callable[[str], None] | None = None) -> list[SegmentedFile]:
    """Segment each image with the bundle ``model`` and write its label map into ``out_dir``.

    Parameters
    ----------
    images : NIfTI files (3-D, or 4-D MESE: the model's echo is used) or DICOM folders.
    model : bundle name or path.
    probabilities : also write ``_desc-muscles_probseg`` (4-D float32, side-agnostic classes).
    side : ``"R"``/``"L"`` when only one leg is in the image.
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
    from tqdm import tqdm

    from alsseg.io.atomic import refuse_overwrite_of_inputs, write_text_atomic
    from alsseg.io.nifti import save_nifti
    from alsseg.labels import dseg_tsv
    from alsseg.seg.infer import Segmenter

    out = Path(out_dir)
    log = log or (lambda s: None)
    names = [output_name(p) for p in images]
    if len(set(names)) != len(names):
        raise InputError(None, "two inputs share a name; their outputs would collide")
    targets = [out / f"{n}_desc-muscles_dseg.nii.gz" for n in names]
    refuse_overwrite_of_inputs(targets, list(images))
    torch_device = None
    if threads is not None:
        if threads < 1:
            raise InputError(None, "--threads must be >= 1")
        import torch

        torch.set_num_threads(threads)
    if device:
        import torch

        torch_device = torch.device(device)
    seg = Segmenter.from_bundle(model, device=torch_device)
    done = []
    for path in tqdm(images, desc="segment", unit="image", disable=not progress or len(images) < 2):
        img = load_input(path)
        if img.data.ndim == 2:
            raise InputError(path, "is 2-D; a volume (3-D) or an echo series (4-D) is needed")
        labels, probs = seg.predict_full(img, probabilities=probabilities, single_leg_side=side)
        n = output_name(path)
        lab_path = save_nifti(labels, out / f"{n}_desc-muscles_dseg.nii.gz", dtype=np.uint8)
        prob_path = None
        if probs is not None:
            prob_path = save_nifti(probs, out / f"{n}_desc-muscles_probseg.nii.gz", dtype=np.float32)
        found = len(set(np.unique(labels.data).tolist()) - {0})
        done.append(SegmentedFile(str(path), Path(lab_path), prob_path, found))
        log(f"{path}: {found} labels -> {out / f'{n}_desc-muscles_dseg.nii.gz'}")
    write_text_atomic(out / "dseg.tsv", dseg_tsv(seg.anatomy))
    return done
