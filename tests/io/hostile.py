"""Hostile inputs, built on the fly (no binary fixture in the repository), and the check that the
command line meets its promise on each: exit code 2, exactly one stderr line
``alsseg: error: FILE: PROBLEM``, no traceback, nothing created or changed anywhere, no hang.

Each case is a function ``case_NAME(root: Path) -> Case`` registered with :func:`case`; it writes
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

        state = torch.load(b / WEIGHTS, weights_only=True)
        edit_weights(state)
        torch.save(state, b / WEIGHTS)
        meta["sha256"][WEIGHTS] = sha256_of(b / WEIGHTS)
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
    if seconds > 60:
        problems.append(f"took {seconds:.0f} s")
    return (not problems, "; ".join(problems) if problems else line)


# ================================================================================ the cases
# ---- geometry
def _codes_zero(hdr):
    hdr["sform_code"] = 0
    hdr["qform_code"] = 0


def _pixdim_zero(hdr):
    hdr["sform_code"] = 0
    hdr["pixdim"][1:4] = 0.0


def _lr_disagree(hdr):
    hdr.set_qform(np.diag([1.5, 1.5, 8.0, 1.0]), code=1)  # the sform's x axis points the other way


@case
def case_info_qform_sform_codes_zero(r):
    p = write_mese(r / "mese.nii.gz", header=_codes_zero)
    return Case(["info", str(p)], str(p), "qform_code and sform_code are both 0")


@case
def case_segment_qform_sform_codes_zero(r):
    p = write_mese(r / "mese.nii.gz", header=_codes_zero)
    return Case(["segment", str(p), "--out", str(r / "seg")], str(p), "orientation (which side is left) is unknown")


@case
def case_info_zero_pixdim(r):
    p = write_mese(r / "mese.nii.gz", header=_pixdim_zero)
    return Case(["info", str(p)], str(p), "voxel size (pixdim)")


@case
def case_fit_t2_zero_pixdim(r):
    p = write_mese(r / "mese.nii.gz", header=_pixdim_zero)
    return Case(["fit-t2", str(p), "--out", str(r / "maps")], str(p), "voxel size (pixdim)")


@case
def case_qform_sform_left_right(r):
    p = write_mese(r / "mese.nii.gz", header=_lr_disagree)
    return Case(["info", str(p)], str(p), "disagree about the orientation")


@case
def case_header_declares_huge_nii(r):
    import nibabel as nib

    hdr = nib.Nifti2Header()  # NIfTI-1 dims stop at 32767
    hdr.set_data_shape((100000, 100000, 1))
    hdr.set_data_dtype(np.float32)
    hdr.set_sform(np.eye(4), code=1)
    p = r / "huge.nii"
    p.write_bytes(hdr.binaryblock + b"\0" * 4)
    return Case(["info", str(p)], str(p), "declares 100000×100000×1 voxels (40.0 GB)")


@case
def case_header_declares_huge_nifti1(r):
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape((32767, 32767, 4))
    hdr.set_data_dtype(np.float32)
    hdr.set_sform(np.eye(4), code=1)
    p = r / "huge.nii"
    p.write_bytes(hdr.binaryblock + b"\0" * 52)  # a 400-byte file
    return Case(["info", str(p)], str(p), "declares 32767×32767×4 voxels")


@case
def case_header_declares_huge_gz(r):
    import gzip

    import nibabel as nib

    hdr = nib.Nifti2Header()
    hdr.set_data_shape((100000, 100000, 1))
    hdr.set_data_dtype(np.float32)
    hdr.set_sform(np.eye(4), code=1)
    p = r / "huge.nii.gz"
    p.write_bytes(gzip.compress(hdr.binaryblock + b"\0" * 4 + b"\0" * 4096))
    return Case(["info", str(p)], str(p), "more than a")


# ---- options and tables
@case
def case_echo_spacing_zero(r):
    p = write_mese(r / "mese.nii.gz")
    return Case(["fit-t2", str(p), "--out", str(r / "maps"), "--echo-spacing-ms", "0"], "--echo-spacing-ms",
                "must be a finite number > 0")


@case
def case_max_ff_negative(r):
    p = write_mese(r / "mese.nii.gz")
    return Case(["run", str(p), "--out", str(r / "o"), "--max-ff", "-1"], "--max-ff", "must be in (0, 1]")


@case
def case_max_ff_above_one(r):
    p = write_mese(r / "mese.nii.gz")
    return Case(["run", str(p), "--out", str(r / "o"), "--max-ff", "1.5"], "--max-ff", "must be in (0, 1]")


@case
def case_slice_profile_zeros(r):
    p = write_mese(r / "mese.nii.gz")
    return Case(["run", str(p), "--out", str(r / "o"), "--slice-profile", "0,0"], "--slice-profile",
                "RATIO must be in (0, 10]")


@case
def case_participants_without_group(r):
    root = bids(r / "bids", participants="participant_id\tage\nsub-01\t61\nsub-02\t58\n")
    return Case(["cohort", str(root), "--out", str(r / "out")], str(root / "participants.tsv"), "no 'group' column")


@case
def case_session_table_cut_mid_row(r):
    tsv = "participant_id\tsession_id\tmuscle\tside\tvolume_ml\nsub-01\tses-01\tTA\tR\t12.5\nsub-01\tses-01\tTA\tL"
    _, out = processed(r, tsv)
    return Case(["stats", str(out)], str(out / "sub-01/ses-01/anat/sub-01_ses-01_muscles.tsv"), "line 3: has 4 field(s)")


@case
def case_motor_side_right(r):
    root = bids(r / "bids", motor="participant_id\tsession_id\tside\tcmap_mv\tmvic_n\nsub-01\tses-01\tright\t4\t100\n")
    return Case(["info", str(root)], str(root / "phenotype/motor.tsv"), "side 'right' must be R or L")


@case
def case_motor_gz_not_gzip(r):
    src, out = processed(r, "participant_id\tsession_id\tmuscle\tside\tvolume_ml\nsub-01\tses-01\tTA\tR\t12.5\n")
    m = r / "motor.tsv.gz"
    m.write_text("participant_id\tsession_id\tside\tcmap_mv\nsub-01\tses-01\tR\t4\n")
    return Case(["stats", str(out), "--motor", str(m)], str(m), "not a valid compressed file")


@case
def case_echo_time_nested(r):
    p = write_mese(r / "mese.nii.gz", sidecar={"EchoTime": [[0.01, 0.02], [0.03, 0.04]]})
    return Case(["info", str(p)], str(p.with_name("mese.json")), "nested lists")


@case
def case_empty_mask(r):
    p = write_mese(r / "mese.nii.gz")
    m = write_3d(r / "mask.nii.gz", np.zeros(SHAPE, np.uint8))
    return Case(["fit-t2", str(p), "--out", str(r / "maps"), "--mask", str(m)], str(m), "mask is empty")


@case
def case_labels_unknown_id(r):
    p = write_mese(r / "mese.nii.gz")
    lab = labels_map()
    lab[0, 0, 0] = 99
    lp = write_3d(r / "labels.nii.gz", lab)
    return Case(["run", str(p), "--out", str(r / "o"), "--labels", str(lp)], str(lp),
                "label value(s) [99] are not in the lowerleg label table")


@case
def case_evaluate_unknown_id(r):
    lab = labels_map()
    gt = write_3d(r / "gt.nii.gz", lab)
    lab[0, 0, 0] = 99
    pred = write_3d(r / "pred.nii.gz", lab)
    return Case(["evaluate", str(pred), str(gt)], str(pred), "label value(s) [99] are not in the lowerleg label table")


def _opt(name, argv_of, problem="must be >= 1"):
    def build(r):
        p = write_mese(r / "mese.nii.gz")
        return Case(argv_of(r, p), name, problem)
    return build


CASES["fit_t2_jobs_zero"] = _opt("--jobs", lambda r, p: ["fit-t2", str(p), "--out", str(r / "m"), "--jobs", "0"])
CASES["fit_t2_chunk_voxels_zero"] = _opt("--chunk-voxels", lambda r, p: ["fit-t2", str(p), "--out", str(r / "m"),
                                                                         "--chunk-voxels", "0"])
CASES["segment_threads_zero"] = _opt("--threads", lambda r, p: ["segment", str(p), "--out", str(r / "s"),
                                                                "--threads", "0"])
CASES["run_threads_zero"] = _opt("--threads", lambda r, p: ["run", str(p), "--out", str(r / "o"), "--threads", "0"])
CASES["cohort_jobs_negative"] = _opt("--jobs", lambda r, p: ["cohort", str(r), "--jobs", "-3"])
CASES["segment_side_bad"] = _opt("--side", lambda r, p: ["segment", str(p), "--out", str(r / "s"), "--side", "X"],
                                 "invalid choice")
CASES["segment_device_banana"] = _opt("--device", lambda r, p: ["segment", str(p), "--out", str(r / "s"),
                                                                "--device", "banana"], "expected cpu, cuda")


@case
def case_segment_device_cuda_without_gpu(r):
    p = write_mese(r / "mese.nii.gz")
    return Case(["segment", str(p), "--out", str(r / "s"), "--device", "cuda"], "--device", "no GPU is visible",
                needs=("no_gpu",))


# ---- nothing written
@case
def case_run_subject_dotdot(r):
    p = write_mese(r / "in/mese.nii.gz")
    return Case(["run", str(p), "--out", str(r / "o"), "--subject", "../../X"], "--subject", "not a path")


@case
def case_run_session_id_dotdot(r):
    p = write_mese(r / "in/mese.nii.gz")
    return Case(["run", str(p), "--out", str(r / "o"), "--subject", "01", "--session-id", "../../X"],
                "--session-id", "not a path")


@case
def case_fit_t2_prefix_dotdot(r):
    p = write_mese(r / "in/mese.nii.gz")
    return Case(["fit-t2", str(p), "--out", str(r / "o"), "--prefix", "../../.."], "--prefix", "not a path")


@case
def case_run_bad_labels_grid_leaves_nothing(r):
    p = write_mese(r / "sub-01/ses-01/anat/sub-01_ses-01_MESE.nii.gz")
    lp = write_3d(r / "labels.nii.gz", np.ones((5, 5, 4), np.uint8))
    return Case(["run", str(p), "--out", str(r / "o"), "--labels", str(lp)], str(lp), "does not match the MESE grid")


@case
def case_segment_second_input_bad(r):
    a = write_mese(r / "a.nii.gz")
    b = r / "b.nii.gz"
    b.write_text("not an image")
    return Case(["segment", str(a), str(b), "--out", str(r / "s")], str(b), "not a readable NIfTI file")


@case
def case_fit_t2_disk_full(r):
    p = write_mese(r / "in/mese.nii.gz")
    out = r / "maps"
    return Case(["fit-t2", str(p), "--out", str(out), "--model", "mono", "--jobs", "1"], str(out),
                "no space left on device", fault=lambda: failing_writes(out, errno.ENOSPC, after=3))


@case
def case_convert_disk_full(r):
    d = dicom_folder(r / "dcm")
    out = r / "o"
    return Case(["convert", str(d), "--out", str(out), "--subject", "01", "--split-echoes"], str(out),
                "no space left on device", fault=lambda: failing_writes(out, errno.ENOSPC, after=5))


@case
def case_read_only_convert(r):
    d = dicom_folder(r / "dcm")
    out = r / "ro"
    out.mkdir()
    return Case(["convert", str(d), "--out", str(out)], str(out), "read-only file system",
                fault=lambda: failing_writes(out, errno.EROFS))


def _read_only(verb_argv):
    def build(r):
        p = write_mese(r / "in/mese.nii.gz")
        out = r / "ro"
        out.mkdir()
        return Case(verb_argv(p, out, r), str(out), "read-only file system",
                    fault=lambda: failing_writes(out, errno.EROFS))
    return build


CASES["read_only_fit_t2"] = _read_only(lambda p, o, r: ["fit-t2", str(p), "--out", str(o), "--model", "mono"])
CASES["read_only_segment"] = _read_only(lambda p, o, r: ["segment", str(p), "--out", str(o), "--model",
                                                         str(spoilt_bundle(r, edit_weights=_always_muscle))])
CASES["read_only_synth"] = _read_only(lambda p, o, r: ["synth", "subject", "--out", str(o / "s"), "--slices", "2"])
CASES["read_only_cohort"] = _read_only(lambda p, o, r: ["cohort", str(bids(r / "bids")), "--out", str(o / "d")])


def _out_is_file(verb_argv):
    def build(r):
        p = write_mese(r / "in/mese.nii.gz")
        f = r / "taken"
        f.write_text("a file")
        return Case(verb_argv(p, f, r), str(f), "exists and is not a folder")
    return build


CASES["out_is_file_fit_t2"] = _out_is_file(lambda p, f, r: ["fit-t2", str(p), "--out", str(f)])
CASES["out_is_file_segment"] = _out_is_file(lambda p, f, r: ["segment", str(p), "--out", str(f)])
CASES["out_is_file_run"] = _out_is_file(lambda p, f, r: ["run", str(p), "--out", str(f)])
CASES["out_is_file_cohort"] = _out_is_file(lambda p, f, r: ["cohort", str(bids(r / "bids")), "--out", str(f)])
CASES["out_is_file_convert"] = _out_is_file(lambda p, f, r: ["convert", str(p.parent), "--out", str(f)])


# ---- special files
@case
def case_segment_symlink_loop(r):
    a = r / "loop.nii.gz"
    os.symlink(r / "loop2.nii.gz", a)
    os.symlink(a, r / "loop2.nii.gz")
    return Case(["segment", str(a), "--out", str(r / "s")], str(a), "symbolic link loop")


@case
def case_info_fifo(r):
    f = r / "pipe.nii.gz"
    os.mkfifo(f)
    return Case(["info", str(f)], str(f), "is a FIFO")


@case
def case_fit_t2_fifo_no_hang(r):
    f = r / "pipe.nii.gz"
    os.mkfifo(f)
    return Case(["fit-t2", str(f), "--out", str(r / "m"), "--echo-spacing-ms", "10"], str(f), "is a FIFO")


@case
def case_info_dev_zero(r):
    return Case(["info", "/dev/zero"], "/dev/zero", "is a character device")


# ---- model bundles
def _bundle_case(edit_meta=None, edit_weights=None, problem="", named_file="configs/metadata.json"):
    def build(r):
        b = spoilt_bundle(r, edit_meta, edit_weights)
        p = write_mese(r / "mese.nii.gz")
        return Case(["segment", str(p), "--out", str(r / "s"), "--model", str(b)], str(b / named_file), problem)
    return build


def _set(path, value):
    def edit(meta):
        d = meta
        for k in path[:-1]:
            d = d[k]
        if value is KeyError:
            del d[path[-1]]
        else:
            d[path[-1]] = value
        return meta
    return edit


CASES["bundle_unknown_anatomy"] = _bundle_case(_set(["alsseg", "anatomy"], "thigh9"), problem="not a known anatomy")
CASES["bundle_metadata_a_list"] = _bundle_case(lambda m: [m], problem="must hold a JSON object")
CASES["bundle_no_preprocess"] = _bundle_case(_set(["alsseg", "preprocess"], KeyError), problem="alsseg.preprocess")
CASES["bundle_patch_size_big"] = _bundle_case(_set(["alsseg", "patch_size"], "big"), problem="alsseg.patch_size")
CASES["bundle_sha256_wrong_type"] = _bundle_case(_set(["sha256"], 42), problem="'sha256' must map")
CASES["bundle_preprocess_bad_value"] = _bundle_case(_set(["alsseg", "preprocess", "echo_index"], "first"),
                                                    problem="echo_index")


def _nan_weights(state):
    k = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[k][0] = float("nan")


def _always_muscle(state):
    """Every weight 0, the last layer's bias favouring muscle 1: a non-empty prediction."""
    _zero_weights(state)
    last = [k for k, v in state.items() if k.endswith("bias") and v.ndim == 1][-1]
    state[last][1] = 5.0


def _zero_weights(state):
    for v in state.values():
        if v.is_floating_point():
            v.zero_()


CASES["bundle_nan_weights"] = _bundle_case(edit_weights=_nan_weights, problem="NaN or infinite",
                                           named_file="models/model.pt")


@case
def case_bundle_empty_prediction(r):
    b = spoilt_bundle(r, edit_weights=_zero_weights)
    p = write_mese(r / "mese.nii.gz")
    return Case(["segment", str(p), "--out", str(r / "s"), "--model", str(b)], str(p), "found no muscle")


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
