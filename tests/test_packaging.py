"""The package as a user installs it: a wheel that carries the shipped model, and a package list
that names every sub-package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _declared_packages() -> set[str]:
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    return set(meta["tool"]["setuptools"]["packages"])


def test_package_list_names_every_subpackage():
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "alsseg").rglob("__init__.py")}
    assert found | {"alsseg.bundles"} == _declared_packages()


def test_shipped_bundles_are_package_data():
    import alsseg.bundles
    from alsseg.seg.bundle import list_bundles

    assert "lowerleg-unet" in list_bundles(alsseg.bundles.SHIPPED_DIR)


@pytest.mark.slow
def test_wheel_installed_elsewhere_segments_with_the_shipped_model(tmp_path):
    """Build a wheel from a copy of the tree as git would commit it, install it (no deps) into a new virtual
    environment that borrows this one's dependencies, and segment from another folder."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout to list the tracked files")
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(src)], check=True, capture_output=True)
    wheel = next(wheels.glob("alsseg-*.whl"))

    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this environment's dependencies, appended after the new site-packages (alsseg itself is an
    # editable finder here, which a plain path entry does not activate)
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)

    work = tmp_path / "elsewhere"
    work.mkdir()
    import nibabel as nib

    from alsseg.io import save_nifti
    from alsseg.synth import Grid, make_subject, render_contrast

    grid = Grid.axial((160, 112, 3), (2.0, 2.0, 10.0))
    save_nifti(render_contrast(make_subject(3), grid, "t1w"), work / "calf_T1w.nii.gz")
    where = subprocess.run([str(py), "-c", "import alsseg, alsseg.bundles; print(alsseg.__file__); "
                            "print(alsseg.bundles.SHIPPED_DIR)"], cwd=work, capture_output=True,
                           text=True, check=True).stdout.split()
    assert all(str(REPO) not in w for w in where), where
    out = subprocess.run([str(py), "-m", "alsseg", "segment", "calf_T1w.nii.gz", "--out", "seg",
                          "--quiet"], cwd=work, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    dseg = list((work / "seg").rglob("*dseg.nii.gz"))
    assert len(dseg) == 1
    labels = np.unique(np.asarray(nib.load(dseg[0]).dataobj))
    assert len(set(labels.tolist()) - {0}) >= 10
