"""The hostile cases (registered into :data:`alsseg_hostile.CASES`); see ``hostile.py``.

Loaded by ``hostile.py`` itself; add a case by adding a function decorated with ``@case``.
"""

from __future__ import annotations

import errno
import os

import numpy as np

from alsseg_hostile import (CASES, SHAPE, Case, bids, case, dicom_folder, failing_writes, labels_map,  # noqa: F401
                            processed, spoilt_bundle, write_3d, write_mese)

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
                "expected a preset")


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
