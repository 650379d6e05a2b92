"""Image grids: shape, voxel size, voxel→world affine, and random grids for training data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Grid:
    """A 3-D voxel grid in world (RAS+, mm) space; axis 2 is the slice axis.

    Attributes:
        shape: ``(X, Y, Z)`` number of voxels.
        affine: ``(4, 4)`` voxel→world matrix (RAS+, mm).
        slice_thickness_mm: thickness of each slice for partial volume (defaults to the
            spacing along axis 2; may be smaller than the spacing when slices have gaps).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    slice_thickness_mm: float | None = None

    @classmethod
    def axial(cls, shape, spacing_mm, *, centre_mm=(0.0, 0.0, 0.0), rotation_deg: float = 0.0,
              tilt_deg: tuple[float, float] = (0.0, 0.0), slice_thickness_mm: float | None = None,
              flip_x: bool = False, flip_y: bool = False) -> Grid:
        """An axial grid centred on ``centre_mm``.

        Args:
            shape: ``(X, Y, Z)``.
            spacing_mm: ``(dx, dy, dz)`` voxel spacing, mm (``dz`` = slice spacing).
            centre_mm: world position of the grid centre.
            rotation_deg: in-plane rotation about the world S axis.
            tilt_deg: small rotations about the R and A axes (oblique slices).
            slice_thickness_mm: slice thickness (default ``dz``).
            flip_x, flip_y: store axis 0 right→left / axis 1 anterior→posterior (as DICOM
                LPS-ordered files do); world positions are unchanged.
        """
        shape = tuple(int(v) for v in shape)
        spacing = np.asarray(spacing_mm, float)
        rz = np.deg2rad(rotation_deg)
        rx, ry = np.deg2rad(tilt_deg[0]), np.deg2rad(tilt_deg[1])
        Rz = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
        Rx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
        Ry = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
        R = Rz @ Ry @ Rx
        signs = np.array([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0, 1.0])
        M = R * (spacing * signs)[None, :]
        centre_vox = (np.asarray(shape, float) - 1) / 2
        aff = np.eye(4)
        aff[:3, :3] = M
        aff[:3, 3] = np.asarray(centre_mm, float) - M @ centre_vox
        return cls(shape, aff, None if slice_thickness_mm is None else float(slice_thickness_mm))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing along the three axes, mm."""
        sx, sy, sz = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return float(sx), float(sy), float(sz)

    @property
    def thickness_mm(self) -> float:
        """Slice thickness used for partial volume, mm."""
        return self.slice_thickness_mm if self.slice_thickness_mm is not None else self.spacing_mm[2]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel (spacing-based), mL."""
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0

    def world(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel coordinates ``(N, 3)`` → world positions ``(N, 3)``, mm."""
        return np.asarray(ijk, float) @ self.affine[:3, :3].T + self.affine[:3, 3]

    def slice_points(self, k: float) -> np.ndarray:
        """World positions ``(X*Y, 3)`` of the voxel centres of (fractional) slice ``k``."""
        base = self._inplane_points()
        return base + (np.float32(k) * self.affine[:3, 2]).astype(np.float32)

    def _inplane_points(self) -> np.ndarray:
        key = "_inplane_cache"
        cached = self.__dict__.get(key)
        if cached is None:
            X, Y, _ = self.shape
            i, j = np.meshgrid(np.arange(X, dtype=np.float32), np.arange(Y, dtype=np.float32), indexing="ij")
            ij = np.stack([i.ravel(), j.ravel()], axis=1)
            cached = (ij @ self.affine[:3, :2].T.astype(np.float32) + self.affine[:3, 3].astype(np.float32))
            object.__setattr__(self, key, cached)
        return cached

    def image(self, data: np.ndarray, **meta):
        """Wrap ``data`` (spatial shape = ``self.shape``) as an :class:`alsseg.io.Image`."""
        from alsseg.io import Image

        if tuple(data.shape[:3]) != self.shape:
            raise ValueError(f"data shape {data.shape} does not match grid {self.shape}")
        return Image(data, self.affine.copy(), None, dict(meta))

    @classmethod
    def like(cls, image, slice_thickness_mm: float | None = None) -> Grid:
        """The grid of an existing :class:`alsseg.io.Image`."""
        return cls(tuple(image.shape[:3]), np.asarray(image.affine, float).copy(), slice_thickness_mm)


def random_grid(rng: np.random.Generator, *, inplane_mm: tuple[float, float] = (0.7, 1.6),
                slice_mm: tuple[float, float] = (5.0, 10.0), n_slices: tuple[int, int] = (12, 30),
                fov_x_mm: tuple[float, float] = (340.0, 420.0),
                fov_y_mm: tuple[float, float] = (170.0, 260.0),
                max_rotation_deg: float = 12.0, max_tilt_deg: float = 5.0,
                max_shift_mm: tuple[float, float, float] = (25.0, 20.0, 40.0),
                p_flip: float = 0.3, max_voxels: int = 256 * 256 * 40, p_one_leg: float = 0.0,
                one_leg_fov_mm: tuple[float, float] = (150.0, 220.0), p_ends: float = 0.0,
                joints_z_mm: tuple[float, float] = (-215.0, 175.0),
                beyond_joint_mm: tuple[float, float] = (15.0, 70.0)) -> Grid:
    """Draw an axial acquisition grid that holds both legs of a :func:`make_subject` subject.

    In-plane spacing uniform in ``inplane_mm``, slice spacing in ``slice_mm`` (thickness equal
    to or up to 30 % less than the spacing, i.e. with a gap), field of view wide enough for
    both legs, random centre shift, in-plane rotation, small tilt, and with probability
    ``p_flip`` an LPS-like storage order (world positions unchanged). The matrix is capped at
    ``max_voxels`` by shrinking the number of slices. With probability ``p_one_leg`` the field of
    view is ``one_leg_fov_mm`` wide and centred near one leg (x = ±60–95 mm), as in one-leg
    protocols; these draws come last, so ``p_one_leg = 0`` gives the grids of earlier versions.
    With probability ``p_ends`` the stack reaches past the ankle or the knee (equally often): its
    last slice lies ``beyond_joint_mm`` past the joint at world z ``joints_z_mm`` = (ankle, knee)
    (a subject's ``z_ankle_mm`` and ``z_ankle_mm + leg_length_mm``), as ankle-to-knee 3-D scans
    and long stacks do; drawn after everything else, so ``p_ends = 0`` leaves the grids as they were.
    """
    d_in = float(rng.uniform(*inplane_mm))
    d_z = float(rng.uniform(*slice_mm))
    thick = d_z * float(rng.choice([1.0, rng.uniform(0.7, 1.0)]))
    nx = round(float(rng.uniform(*fov_x_mm) / d_in))
    ny = round(float(rng.uniform(*fov_y_mm) / d_in))
    nz = int(rng.integers(n_slices[0], n_slices[1] + 1))
    nz = max(1, min(nz, max_voxels // max(nx * ny, 1)))
    shift = rng.uniform(-1, 1, 3) * np.asarray(max_shift_mm)
    flip = rng.random() < p_flip
    if p_one_leg > 0 and rng.random() < p_one_leg:
        nx = round(float(rng.uniform(*one_leg_fov_mm) / d_in))
        nz = max(1, min(nz, max_voxels // max(nx * ny, 1)))
        shift[0] = rng.choice([-1.0, 1.0]) * rng.uniform(60.0, 95.0)
    if p_ends > 0 and rng.random() < p_ends:
        half_z = 0.5 * (nz - 1) * d_z
        past = float(rng.uniform(*beyond_joint_mm))
        shift[2] = (joints_z_mm[0] - past + half_z) if rng.random() < 0.5 else (joints_z_mm[1] + past - half_z)
    return Grid.axial((nx, ny, nz), (d_in, d_in, d_z), centre_mm=tuple(shift),
                      rotation_deg=float(rng.uniform(-max_rotation_deg, max_rotation_deg)),
                      tilt_deg=tuple(rng.uniform(-max_tilt_deg, max_tilt_deg, 2)),
                      slice_thickness_mm=thick, flip_x=flip, flip_y=flip)
