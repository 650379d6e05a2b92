"""DICOM → NIfTI: alsseg side by side with dcm2niix (the reference converter), on the real scan.

Prints one table: median wall time of repeats for reading / converting the 17-file enhanced
multi-frame MESE in ``../shared/data/mese-leg-3t``, and the agreement of the two outputs in world
space (both brought to the RAS-canonical view: voxel values, affine). dcm2niix is optional
(``pip install dcm2niix``); without it only alsseg is timed.

    python benchmarks/io_convert.py [--repeats 7] [--dicom DIR]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dicom", default=str(REPO.parent / "shared" / "data" / "mese-leg-3t"))
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    from alsseg.io import load_mese, load_nifti
    from alsseg.io.convert import convert_dicom
    from alsseg.io.dicom import read_dicom_series

    src = Path(args.dicom)
    cpu = platform.processor() or platform.machine()
    try:
        import os

        cpu = f"{cpu}, {os.cpu_count()} CPUs"
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
        cpu = f"{model} ({os.cpu_count()} CPUs)" if model else cpu
    except OSError:
        pass
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        counter = iter(range(10**6))
        rows.append(("alsseg read_dicom_series (to memory)", _time(lambda: read_dicom_series(src), args.repeats)))
        rows.append(("alsseg convert (4-D .nii.gz + JSON)", _time(
            lambda: convert_dicom(src, tmp / f"a{next(counter)}"), args.repeats)))
        ours = load_mese(next((tmp / "a0").glob("*.nii.gz")))
        d2n = shutil.which("dcm2niix")
        agreement = "dcm2niix not installed (pip install dcm2niix)"
        if d2n:
            def run_d2n():
                out = tmp / f"d{next(counter)}"
                out.mkdir()
                subprocess.run([d2n, "-z", "y", "-b", "y", "-f", "m", "-o", str(out), str(src)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                return out

            rows.append(("dcm2niix -z y (17 × 3-D .nii.gz + JSON)", _time(run_d2n, args.repeats)))
            out = run_d2n()
            files = sorted(out.glob("*.nii.gz"), key=lambda p: int(p.name.split("_e")[-1].split(".")[0]))
            theirs = [load_nifti(f).to_ras() for f in files]
            mine = ours.image.to_ras()
            data_diff = max(float(np.abs(mine.data[..., e] - t.data).max()) for e, t in enumerate(theirs))
            aff_diff = float(np.abs(mine.affine - theirs[0].affine).max())
            agreement = (f"{len(files)} echoes; RAS view: max |voxel difference| = {data_diff:g}, "
                         f"max |affine difference| = {aff_diff:.2g} mm")
    ver = ""
    if shutil.which("dcm2niix"):
        ver = subprocess.run(["dcm2niix", "-v"], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"DICOM → NIfTI on {src.name} (17 enhanced multi-frame files, 8 slices × 17 echoes, 256 × 128)")
    print(f"machine: {cpu}; python {platform.python_version()}; dcm2niix {ver or '-'}; "
          f"median of {args.repeats} runs")
    print(f"{'tool':<44} {'median s':>9}")
    for name, t in rows:
        print(f"{name:<44} {t:>9.3f}")
    print(f"agreement with dcm2niix: {agreement}")


if __name__ == "__main__":
    main()
