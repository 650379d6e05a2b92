"""Hostile inputs, built on the fly (no binary fixture in the repository), and the check that the
command line meets its promise on each: exit code 2, exactly one stderr line
``alsseg: error: FILE: PROBLEM``, no traceback, nothing created or changed anywhere, no hang.

Each case (in ``hostile_cases.py``) is a function ``case_NAME(root: Path) -> Case`` registered with :func:`case`; it writes
what it needs under ``root`` and returns the command line plus what the error line must name.
Used by ``tests/io/test_hostile.py`` (one test per case) and ``benchmarks/hostile_inputs.py``
(prints a table case → held/failed). Add a case by adding a function.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

AFFINE = np.array([[-1.5, 0, 0, 40.0], [0, 1.5, 0, -20.0], [0, 0, 8.0, -30.0], [0, 0, 0, 1]])
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    """One hostile command line and what its one error line must contain."""

    argv: list[str]
    named: str           # the file / option the line must name
    problem: str         # a phrase the line must contain
    code: int = 2
    fault: Callable[[], contextlib.AbstractContextManager] | None = None  # e.g. a full disk
    needs: tuple[str, ...] = field(default_factory=tuple)  # "no_gpu", "fifo"


CASES: dict[str, Callable[[Path], Case]] = {}


def case(fn):
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


# ---------------------------------------------------------------------------------- builders
TE_MS = (10, 20, 30, 40, 50, 60)
SHAPE = (24, 20, 3)


def mese_volume(shape=SHAPE, te=TE_MS, seed=1) -> np.ndarray:
    """``(X, Y, Z, E)`` float32 decay, every voxel > 0."""
    m0 = np.random.default_rng(seed).uniform(500, 1000, size=shape)
    return (m0[..., None] * np.exp(-np.asarray(te, float) / 35.0)).astype(np.float32)


def write_mese(path: Path, data=None, te=TE_MS, sidecar: dict | None = None, header=None) -> Path:
    """A 4-D MESE NIfTI + JSON sidecar; ``header(nifti_header)`` may spoil the header, written
    byte for byte (nibabel's own save would repair pixdim from the affine)."""
    import gzip

    import nibabel as nib

    data = np.asarray(mese_volume(te=te) if data is None else data, np.float32)
    hdr = nib.Nifti1Header()
    hdr.set_data_shape(data.shape)
    hdr.set_data_dtype(np.float32)
    hdr.set_sform(AFFINE, code=1)
    hdr.set_qform(AFFINE, code=1)
    hdr.set_zooms((1.5, 1.5, 8.0, 1.0)[:data.ndim])
    hdr["vox_offset"] = 352
    if header is not None:
        header(hdr)
    raw = hdr.binaryblock + b"\0" * 4 + data.tobytes(order="F")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    meta = sidecar if sidecar is not None else {"EchoTime": [t / 1000 for t in te], "RepetitionTime": 3.0,
                                                 "MagneticFieldStrength": 3, "RefocusingFlipAngle": 180}
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(meta))
    return path


def write_3d(path: Path, data, affine=AFFINE) -> Path:
    from alsseg.io import save_nifti

    return save_nifti(np.asarray(data), path, affine=affine)


def bids(root: Path, participants: str | None = None, motor: str | None = None) -> Path:
    """Two subjects (sub-01 ALS, sub-02 control), one session each, 4-D MESE."""
    for sub in ("01", "02"):
        write_mese(root / f"sub-{sub}/ses-01/anat/sub-{sub}_ses-01_MESE.nii.gz")
    (root / "participants.tsv").write_text(participants or "participant_id\tgroup\nsub-01\tALS\nsub-02\tcontrol\n")
    if motor is not None:
        (root / "phenotype").mkdir(exist_ok=True)
        (root / "phenotype/motor.tsv").write_text(motor)
    return root


def processed(root: Path, muscles_tsv: str) -> tuple[Path, Path]:
    """A BIDS dataset and an alsseg output folder holding one finished session (its table given)."""
    src = bids(root / "bids")
    out = root / "out"
    anat = out / "sub-01/ses-01/anat"
    anat.mkdir(parents=True)
    (out / "alsseg_run.json").write_text(json.dumps({"source": str(src.resolve()), "options": {}}))
    (anat / "sub-01_ses-01_muscles.tsv").write_text(muscles_tsv)
    (out / "sub-01/ses-01/sub-01_ses-01_alsseg.json").write_text("{}")
    return src, out


def dicom_folder(folder: Path) -> Path:
    """A small classic DICOM MESE series (the io tests' writer, loaded by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("alsseg_io_conftest", Path(__file__).with_name("conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.modules.setdefault("alsseg_io_conftest", mod)  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod.write_dicom_series(folder, enhanced=False).folder


def labels_map(shape=SHAPE) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[2:8, 4:12, :] = 1
    lab[14:20, 4:12, :] = 11
    return lab


def spoilt_bundle(root: Path, edit_meta=None, edit_weights=None) -> Path:
    """A copy of the shipped bundle with its metadata or weights changed (sha256 recomputed)."""
    from alsseg.seg.bundle import MODELS_DIR, WEIGHTS, sha256_of

    b = root / "bundle"
    shutil.copytree(MODELS_DIR / "lowerleg-unet", b)
    meta_path = b / "configs/metadata.json"
    meta = json.loads(meta_path.read_text())
    if edit_weights is not None:
        import torch

        for member in meta["alsseg"].get("members", [WEIGHTS]):  # every member of an ensemble
            state = torch.load(b / member, weights_only=True)
            edit_weights(state)
            torch.save(state, b / member)
            meta["sha256"][member] = sha256_of(b / member)
    if edit_meta is not None:
        meta = edit_meta(meta)
    meta_path.write_text(json.dumps(meta))
    return b


# ---------------------------------------------------------------------------------- faults
@contextlib.contextmanager
def failing_writes(root: Path, err: int, after: int = 0):
    """Make file and folder creation under ``root`` fail with ``err`` (EROFS: read-only; ENOSPC
    after ``after`` files: a disk that fills up). Root cannot be kept out by permissions."""
    root = str(Path(root).resolve())
    made = [0]
    real_open, real_mkdir, real_bopen = os.open, os.mkdir, builtins.open

    def under(p) -> bool:
        try:
            return os.path.abspath(os.fspath(p)).startswith(root)
        except TypeError:
            return False

    def deny(p):
        if made[0] >= after:
            raise OSError(err, os.strerror(err), os.fspath(p))
        made[0] += 1

    def fake_open(p, flags, *a, **k):
        if under(p) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            deny(p)
        return real_open(p, flags, *a, **k)

    def fake_mkdir(p, *a, **k):
        if under(p) and err == errno.EROFS:
            raise OSError(err, os.strerror(err), os.fspath(p))
        return real_mkdir(p, *a, **k)

    def fake_bopen(p, mode="r", *a, **k):
        if isinstance(p, (str, bytes, os.PathLike)) and under(p) and any(c in mode for c in "wax+"):
            deny(p)
        return real_bopen(p, mode, *a, **k)

    os.open, os.mkdir, builtins.open = fake_open, fake_mkdir, fake_bopen
    io_open = io.open
    io.open = fake_bopen
    try:
        yield
    finally:
        os.open, os.mkdir, builtins.open, io.open = real_open, real_mkdir, real_bopen, io_open


# ---------------------------------------------------------------------------------- the check
def snapshot(root: Path) -> dict:
    """Every entry under ``root``: kind and, for regular files, a sha256 (links not followed)."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                snap[rel] = "link"
            elif p.is_file():
                snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                snap[rel] = "dir" if p.is_dir() else "other"
    return snap


def run_case(name: str, root: Path) -> tuple[bool, str]:
    """Build case ``name`` under ``root``, run it in-process, check the promise.

    Returns ``(held, why)``; ``why`` says what broke (or the error line when it held).
    """
    from alsseg.cli import main

    c = CASES[name](root)
    before = snapshot(root)
    import sys
    import tempfile

    err, out = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as raw_err:  # also what bypasses sys.stderr (loggers, C code)
        saved_fd = os.dup(2)
        os.dup2(raw_err.fileno(), 2)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
                    (c.fault() if c.fault else contextlib.nullcontext()):
                try:
                    code = main(c.argv)
                except SystemExit as exc:  # argparse: must not happen
                    code = f"SystemExit({exc.code})"
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        raw_err.seek(0)
        stray = raw_err.read().decode(errors="replace")
    seconds = time.perf_counter() - t0
    text = stray + err.getvalue()
    # the lines a terminal shows: a progress bar redrawn with \r and cleared leaves no line
    lines = [ln.split("\r")[-1] for ln in text.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    problems = []
    if code != c.code:
        problems.append(f"exit {code}, expected {c.code}")
    if "Traceback" in text + out.getvalue():
        problems.append("traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    line = lines[-1] if lines else ""
    if not line.startswith("alsseg: error: "):
        problems.append("no 'alsseg: error:' line")
    if c.named not in line:
        problems.append(f"does not name {c.named}")
    if c.problem not in line:
        problems.append(f"does not say {c.problem!r}")
    after = snapshot(root)
    if after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        problems.append(f"disk changed: {', '.join(k for k, _ in changed[:4])}")
    if seconds > 300:  # a hang (a FIFO read forever); generous: a loaded CI machine is slow
        problems.append(f"took {seconds:.0f} s")
    return (not problems, "; ".join(problems) if problems else line)


def _load_cases() -> None:
    """Register the cases of ``hostile_cases.py`` (this module must be importable as
    ``alsseg_hostile``: the test and the benchmark load it under that name)."""
    import importlib.util
    import sys

    sys.modules.setdefault("alsseg_hostile", sys.modules[__name__])
    spec = importlib.util.spec_from_file_location("alsseg_hostile_cases", Path(__file__).with_name("hostile_cases.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)


def runnable(name: str) -> str | None:
    """Why case ``name`` cannot run on this machine (``None``: it can)."""
    c = CASES[name]
    if "cuda_without_gpu" in name:
        try:
            import torch

            if torch.cuda.is_available():
                return "a GPU is visible"
        except ImportError:
            return "no torch"
    if ("fifo" in name and not hasattr(os, "mkfifo")) or ("dev_zero" in name and not os.path.exists("/dev/zero")):
        return "no FIFOs / devices on this system"
    return None if c else "unknown"


_load_cases()
