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

from alsseg.bundles import SHIPPED_DIR
from alsseg.io.errors import InputError

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
    path = bundle / "configs" / "metadata.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc.msg})") from None


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
    return obj


def load_run_spec(run_dir: str | Path) -> dict:
    """``RUN/run.json`` (recipe and data of a training run)."""
    p = Path(run_dir) / "run.json"
    if not p.is_file():
        raise InputError(run_dir, "not a training run (no run.json)")
    return json.loads(p.read_text())
