"""Model bundles (MONAI bundle layout) and their safe loading.

::

    models/NAME/
      configs/metadata.json   version, changelog, network_data_format, label names, input spec,
                              "sha256" of the weights, and an "alsseg" block (preprocessing,
                              network, patch size, anatomy, recipe) — everything needed to predict
      models/model.pt         a plain state_dict (tensors only), read with weights_only=True
      docs/README.md          the model card

Loading checks the weights' sha256 against ``metadata.json`` and refuses pickled Python
objects (``torch.load(..., weights_only=True)``), raising :class:`InputError` either way.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

from alsseg.io.atomic import atomic_path, write_text_atomic
from alsseg.io.errors import InputError
from alsseg.labels import load_anatomy
from alsseg.seg.recipe import PreprocessConfig, recipe_from_dict

from alsseg.bundles import SHIPPED_DIR

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
        raise InputError(path, f"not valid JSON ({getattr(exc, 'msg', None) or exc.reason})") from None
    if not isinstance(meta, dict):
        raise InputError(path, f"must hold a JSON object, not a {type(meta).__name__}")
    return meta


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
        raise InputError(path, f"alsseg.patch_size must be a list of 2 or 3 positive whole numbers, got {str(patch)[:80]!r}")
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


def load_bundle(name_or_path: str | Path = DEFAULT_MODEL, device=None):
    """A :class:`~alsseg.seg.infer.Segmenter` from a bundle (checksum verified, weights_only)."""
    from alsseg.seg.infer import build_segmenter

    bundle = resolve_bundle(name_or_path)
    meta_path = bundle / "configs" / "metadata.json"
    meta = read_metadata(bundle)
    spec = check_metadata(meta, meta_path)
    state = safe_load_weights(bundle / WEIGHTS, meta["sha256"][WEIGHTS])
    try:
        pre = recipe_from_dict({"preprocess": spec["preprocess"]}, meta_path).preprocess
        net = recipe_from_dict({"network": spec["network"]}, meta_path).network
    except InputError as exc:  # always name the bundle
        raise InputError(meta_path, exc.problem) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(meta_path, f"malformed alsseg block ({type(exc).__name__}: {str(exc)[:120]})") from None
    try:
        return build_segmenter(state, pre, net, spec["patch_size"], spec.get("anatomy", "lowerleg"), device,
                               {**meta, "name": meta.get("name", bundle.name), "path": str(bundle)})
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(bundle / WEIGHTS, f"weights do not fit the network described in {meta_path.name} "
                         f"({first})") from None


def load_run_spec(run_dir: str | Path) -> dict:
    """``RUN/run.json`` (recipe and data of a training run)."""
    p = Path(run_dir) / "run.json"
    if not p.is_file():
        raise InputError(run_dir, "not a training run (no run.json)")
    return json.loads(p.read_text())


def load_checkpoint_segmenter(checkpoint: str | Path, device=None):
    """A Segmenter from a run's checkpoint file (``RUN/checkpoints/best.pt`` or ``last.pt``)."""
    from alsseg.seg.infer import build_segmenter

    checkpoint = Path(checkpoint)
    spec = load_run_spec(checkpoint.parent.parent)
    recipe = recipe_from_dict(spec["recipe"])
    pre = recipe_from_dict({"preprocess": spec.get("preprocess") or recipe.to_dict()["preprocess"]}).preprocess
    net = recipe_from_dict({"network": spec.get("network") or recipe.to_dict()["network"]}).network
    state = safe_load_weights(checkpoint)
    return build_segmenter(state, pre, net, recipe.train.patch_size, recipe.anatomy, device,
                           {"name": str(checkpoint)})


def network_data_format(pre: PreprocessConfig, patch_size, anatomy_name: str, context_slices: int = 0) -> dict:
    """MONAI bundle ``network_data_format`` block (2-D/2.5-D: input channels = the slice and its
    neighbours; 3-D: one channel, a ``(H, W, D)`` block of slices)."""
    anat = load_anatomy(anatomy_name)
    classes = {"0": "background", **{str(m.index): m.abbrev for m in anat.muscles}}
    k = int(context_slices)
    what = "MRI volume" if len(patch_size) == 3 else "MRI slice"
    channels = {str(c): (f"{what} (any contrast; echo 1 of a MESE)" if c == k else f"slice {c - k:+d}")
                for c in range(2 * k + 1)}
    return {
        "inputs": {"image": {
            "type": "image", "format": "magnitude", "modality": "MR", "num_channels": 2 * k + 1,
            "spatial_shape": list(patch_size), "dtype": "float32", "value_range": [],
            "is_patch_data": True, "channel_def": channels,
            "preprocessing": f"RAS, in-plane {list(pre.target_spacing_mm)} mm, clip {list(pre.clip_percentiles)} "
                             "percentiles, z-score over the body",
        }},
        "outputs": {"pred": {
            "type": "image", "format": "segmentation", "num_channels": len(classes),
            "spatial_shape": list(patch_size), "dtype": "float32", "value_range": [0, 1],
            "is_patch_data": True, "channel_def": classes,
            "postprocessing": "argmax; left/right from world coordinates; final ids right 1-7, left 11-17",
        }},
    }


def export_bundle(run_dir: str | Path, out_dir: str | Path, *, name: str, version: str = "0.1.0",
                  changelog: str = "first release", description: str = "", checkpoint: str = "best",
                  model_card: str | None = None, extra: dict | None = None) -> Path:
    """Write a bundle from a training run.

    Raises:
        InputError: not a run, checkpoint missing, output folder already holds a different bundle
            version with the same version string.
    """
    import numpy
    import torch

    import monai

    run_dir = Path(run_dir)
    spec = load_run_spec(run_dir)
    ck = run_dir / "checkpoints" / f"{checkpoint}.pt"
    state = safe_load_weights(ck)
    recipe = recipe_from_dict(spec["recipe"])
    pre = recipe_from_dict({"preprocess": spec.get("preprocess") or recipe.to_dict()["preprocess"]}).preprocess
    net = recipe_from_dict({"network": spec.get("network") or recipe.to_dict()["network"]}).network
    out = Path(out_dir)
    meta_path = out / "configs" / "metadata.json"
    old = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    changes = dict(old.get("changelog", {}))
    changes[version] = changelog
    anat = load_anatomy(recipe.anatomy)
    weights = out / WEIGHTS
    weights.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(weights, suffix=".pt") as tmp:
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp)
    from dataclasses import asdict

    meta = {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "name": name,
        "version": version,
        "changelog": dict(sorted(changes.items(), key=lambda kv: [int(p) if p.isdigit() else 0 for p in kv[0].split(".")], reverse=True)),
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "optional_packages_version": {"nibabel": __import__("nibabel").__version__},
        "task": "lower-leg muscle segmentation (7 muscles x 2 legs) on axial MRI",
        "description": description or recipe.description,
        "authors": "alsseg contributors",
        "copyright": "Apache-2.0",
        "label_names": {str(lb.id): lb.name for lb in anat.labels},
        "network_data_format": network_data_format(pre, recipe.train.patch_size, recipe.anatomy, net.context_slices),
        "sha256": {WEIGHTS: sha256_of(weights)},
        "trained_on": {"machine": platform.processor() or platform.machine(), **spec.get("trained_on", {})},
        "alsseg": {"anatomy": recipe.anatomy, "preprocess": asdict(pre), "network": asdict(net),
                   "patch_size": list(recipe.train.patch_size), "recipe": recipe.to_dict(),
                   "checkpoint": {"file": ck.name, **spec.get("best", {})}, **(extra or {})},
    }
    meta["alsseg"] = json.loads(json.dumps(meta["alsseg"]))
    write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    if model_card is not None:
        write_text_atomic(out / "docs" / "README.md", model_card)
    for f in (weights, meta_path, out / "docs" / "README.md"):
        if f.is_file():
            f.chmod(0o644)  # shipped files are world-readable (temporary files start as 0600)
    return out
