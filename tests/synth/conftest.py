"""Fixtures of the synthetic-data tests: small grids and subjects rendered once per session."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def small_grid():
    """A coarse axial grid holding both legs (2.5 mm in-plane, 6 slices of 10 mm)."""
    from alsseg.synth import Grid

    return Grid.axial((150, 90, 6), (2.5, 2.5, 10.0), slice_thickness_mm=7.0)


@pytest.fixture(scope="session")
def healthy_subject():
    from alsseg.synth import make_subject

    return make_subject(11, disease="healthy")


@pytest.fixture(scope="session")
def healthy_tissues(healthy_subject, small_grid):
    from alsseg.synth import render_tissues

    return render_tissues(healthy_subject, small_grid)


def label_centroid_world(label_img, lid):
    """World (RAS) centroid of label ``lid`` of an Image."""
    ijk = np.argwhere(label_img.data == lid)
    return ijk.mean(0) @ label_img.affine[:3, :3].T + label_img.affine[:3, 3]
