"""Post-processing: left/right from world coordinates, largest component, holes filled."""

import numpy as np
import pytest

from alsseg.labels import load_anatomy
from alsseg.seg.postprocess import bounding_box, fill_holes_slicewise, largest_component, postprocess, split_legs


ANAT = load_anatomy()


def test_sides_from_world_coordinates(toy):
    lab, _ = toy.leg_labels()
    agn = (lab % 10).astype(np.uint8)
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    aff[0, 3] = -80.0  # centred: x from -80 to +80 mm
    out = postprocess(agn, aff, (2.0, 2.0, 7.0), ANAT)
    np.testing.assert_array_equal(out, lab)  # right leg (larger x) got ids 1-7


def test_sides_follow_the_affine_not_the_voxel_order(toy):
    lab, _ = toy.leg_labels()
    agn = (lab % 10).astype(np.uint8)
    aff = np.diag([-2.0, 2.0, 7.0, 1.0])  # axis 0 runs right → left
    aff[0, 3] = 80.0
    out = postprocess(agn, aff, (2.0, 2.0, 7.0), ANAT)
    # the leg drawn at high voxel x now lies at low world x: it is the left leg
    flipped = np.where(lab > 10, lab - 10, np.where(lab > 0, lab + 10, 0))
    np.testing.assert_array_equal(out, flipped)


def test_single_leg_side(toy):
    lab, _ = toy.leg_labels(legs=1)
    agn = (lab % 10).astype(np.uint8)
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    aff[0, 3] = 10.0  # world x > 0: right, unless told
    assert set(np.unique(postprocess(agn, aff, (2, 2, 7), ANAT))) - {0} == set(range(1, 8))
    assert set(np.unique(postprocess(agn, aff, (2, 2, 7), ANAT, single_leg_side="L"))) - {0} == set(range(11, 18))
    legs = split_legs(agn > 0, aff, (2, 2, 7))
    assert set(np.unique(legs)) == {"R"}


def test_largest_component_and_holes(toy):
    lab, _ = toy.leg_labels()
    agn = (lab % 10).astype(np.uint8)
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    aff[0, 3] = -80.0
    noisy = agn.copy()
    # a stray island of TA far from any TA, and a hole inside a SOL region
    sol = np.argwhere(lab[:, :, 2] == 5)
    cx, cy = sol[len(sol) // 2]
    noisy[cx, cy, 2] = 0
    noisy[0:2, 0:2, 0] = 1
    out = postprocess(noisy, aff, (2.0, 2.0, 7.0), ANAT)
    assert out[0:2, 0:2, 0].max() == 0
    assert out[cx, cy, 2] == lab[cx, cy, 2]
    raw = postprocess(noisy, aff, (2.0, 2.0, 7.0), ANAT, clean=False)
    assert raw[cx, cy, 2] == 0


def test_far_apart_slices_are_not_connected():
    """7 mm slices keep the largest 3-D component; 37 mm slices keep each slice's largest piece,
    so a muscle that shifts between far-apart slices is not cut down to one slice."""
    agn = np.zeros((40, 20, 3), np.uint8)
    agn[4:12, 4:12, 0] = 1   # TA, slice 0
    agn[14:24, 4:14, 1] = 1  # TA moved in-plane in slice 1: no overlap with slice 0
    agn[14:24, 4:14, 2] = 1
    agn[30:32, 16:18, 1] = 1  # a stray TA speck in slice 1
    aff = np.diag([2.0, 2.0, 7.0, 1.0])
    aff[0, 3] = 10.0  # one leg, right
    near = postprocess(agn, aff, (2.0, 2.0, 7.0), ANAT)
    assert near[:, :, 0].max() == 0 and (near[:, :, 1:] == 1).sum() == 200
    aff[2, 2] = 37.0
    far = postprocess(agn, aff, (2.0, 2.0, 37.0), ANAT)
    assert (far[:, :, 0] == 1).sum() == 64 and (far[:, :, 1:] == 1).sum() == 200
    assert far[30:32, 16:18, 1].max() == 0  # the speck still goes


@pytest.mark.parametrize("seed", range(6))
def test_cropped_cleaning_equals_the_whole_array(seed):
    """largest_component and fill_holes_slicewise work inside the mask's bounding box; the
    result must be what scipy gives on the whole array (random blobs, some touching the edge)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    mask = ndimage.binary_opening(rng.random((40, 36, 5)) < 0.55, iterations=1)
    mask[:, :, 3] = False  # an empty slice
    mask[rng.integers(0, 40), :, 4] = True  # a line across the slice, edge to edge
    x, y = rng.integers(2, 28), rng.integers(2, 24)
    mask[x:x + 8, y:y + 8, 1] = True
    mask[x + 2:x + 6, y + 2:y + 6, 1] = False  # a ring: its inside is a hole
    mask[0:6, 0:6, 2] = True
    mask[0:4, 0:4, 2] = False  # a ring cut open by the array's corner: no hole
    comp, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(comp.ravel())
    sizes[0] = 0
    expected = comp == int(np.argmax(sizes)) if n > 1 else mask
    np.testing.assert_array_equal(largest_component(mask), expected)
    filled = np.stack([ndimage.binary_fill_holes(mask[:, :, z]) for z in range(5)], axis=2)
    assert (filled & ~mask).any()  # the case has holes to fill
    np.testing.assert_array_equal(fill_holes_slicewise(mask), filled)


def test_bounding_box():
    mask = np.zeros((6, 7, 3), bool)
    mask[1, 2, 0] = mask[4, 5, 2] = True
    assert bounding_box(mask) == (slice(1, 5), slice(2, 6), slice(0, 3))
