"""Reading model bundles and training runs from disk (no network is built here).

::

    models/NAME/
      configs/metadata.json   version, changelog, network_data_format, label names, input spec,
                              "sha256" of the weights, and an "alsseg" block (preprocessing,
                              network, patch size, anatomy, recipe) — everything needed to predict
      models/model.pt         a plain state_dict (tensors only), read with weights_only=True
      docs/README.md          the model card

Reading checks the weights' sha256 against ``metadata.json`` and refuses pickled Python objects
(``torch.load(..., weights_only=True)``), raising :class:`InputError` either way. Writing a
bundle is :mod:`alsseg.seg.bundle`; building a :class:`~alsseg.seg.infer.Segmenter` from one is
:mod:`alsseg.seg.infer`; both use this module and neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from alsseg.io.errors import InputError

try:
    from alsseg.bundles import SHIPPED_DIR
except ModuleNotFoundError:  # a source checkout on PYTHONPATH, not installed: the bundles are in its models/
    SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models"

#: where shipped bundles live: the repository's ``models/`` folder, installed as ``alsseg.bundles``.
MODELS_DIR = SHIPPED_DIR
DEFAULT_MODEL = "lowerleg-unet"
WEIGHTS = "models/model.pt"


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_bundle(name_or_path: str | Path) -> Path:
    """A bundle folder from a path or a shipped name.

    Raises:
        InputError: neither a folder with ``configs/metadata.json`` nor a shipped name.
    """
    p = Path(name_or_path)
    for cand in (p, MODELS_DIR / str(name_or_path)):
        if (cand / "configs" / "metadata.json").is_file():
            return cand
    shipped = ", ".join(list_bundles()) or "none"
    raise InputError(p, f"no such model bundle (shipped: {shipped})")


def list_bundles(models_dir: Path = MODELS_DIR) -> list[str]:
    """Names of the bundles in ``models_dir``."""
    if not models_dir.is_dir():
        return []
    return sorted(d.name for d in models_dir.iterdir() if (d / "configs" / "metadata.json").is_file())


def read_metadata(bundle: Path) -> dict:
    """``configs/metadata.json`` as a dict (a JSON object), or :class:`InputError` naming it."""
    from alsseg.io.validate import input_kind

    path = bundle / "configs" / "metadata.json"
    input_kind(path)
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason})") from None
    if not isinstance(meta, dict):
        raise InputError(path, f"must hold a JSON object, not a {type(meta).__name__}")
    return meta


def member_checksums(meta: dict) -> list[tuple[str, str | None]]:
    """``(weight file, recorded sha256 or None)`` of each member of a bundle, in bundle order,
    from its metadata (one member, ``models/model.pt``, when ``alsseg.members`` is absent)."""
    members = meta.get("alsseg", {}).get("members", [WEIGHTS])
    return [(m, meta.get("sha256", {}).get(m)) for m in members]


def check_metadata(meta: dict, path: Path) -> dict:
    """The ``alsseg`` block of a bundle's metadata, checked field by field (types, ranges, anatomy).

    Raises:
        InputError: naming ``path`` (the bundle's metadata.json) and the field at fault.
    """
    from alsseg.labels import available_anatomies

    spec = meta.get("alsseg")
    if not isinstance(spec, dict):
        raise InputError(path, "no 'alsseg' block (not an alsseg bundle)")
    sha = meta.get("sha256")
    if isinstance(sha, dict) and not sha.get(WEIGHTS):
        raise InputError(path, f"no sha256 recorded for {WEIGHTS}")
    if not isinstance(sha, dict) or not isinstance(sha.get(WEIGHTS), str) or len(sha[WEIGHTS]) != 64:
        raise InputError(path, f"'sha256' must map {WEIGHTS} to a 64-character hex string, got {str(sha)[:80]!r}")
    for key in ("preprocess", "network"):
        if not isinstance(spec.get(key), dict):
            raise InputError(path, f"alsseg.{key} must be a JSON object, got {str(spec.get(key))[:80]!r}")
    patch = spec.get("patch_size")
    if (not isinstance(patch, list) or len(patch) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in patch)):
        raise InputError(path, f"alsseg.patch_size must be a list of 2 or 3 positive whole numbers, "
                         f"got {str(patch)[:80]!r}")
    anatomy = spec.get("anatomy", "lowerleg")
    if not isinstance(anatomy, str) or anatomy not in available_anatomies():
        raise InputError(path, f"alsseg.anatomy {str(anatomy)[:80]!r} is not a known anatomy "
                         f"({', '.join(available_anatomies())})")
    return spec


def safe_load_weights(path: str | Path, expected_sha256: str | None = None) -> dict:
    """Read a weights file with ``weights_only=True`` after checking its sha256.

    Raises:
        InputError: missing file, checksum mismatch, pickled objects, or not a dict of tensors.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file is missing")
    if expected_sha256 is not None:
        got = sha256_of(path)
        if got != expected_sha256:
            raise InputError(path, f"sha256 {got[:16]}… does not match the bundle's {expected_sha256[:16]}… "
                                   "(corrupt or tampered weights)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"refused: not plain tensor weights ({first[:160]})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(path, "refused: weights are not a state_dict of tensors")
    bad = [k for k, v in obj.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InputError(path, f"refused: {len(bad)} weight tensor(s) hold NaN or infinite values "
                         f"({', '.join(bad[:3])}{' …' if len(bad) > 3 else ''})")
    return obj


def load_run_spec(run_dir: str | Path) -> dict:
    """``RUN/run.json`` (recipe and data of a training run)."""
    p = Path(run_dir) / "run.json"
    if not p.is_file():
        raise InputError(run_dir, "not a training run (no run.json)")
    return json.loads(p.read_text())
