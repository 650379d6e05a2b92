"""Writing model bundles (MONAI bundle layout) from a training run; reading them is
:mod:`alsseg.seg.store` (its names are re-exported here).

::

    models/NAME/
      configs/metadata.json   version, changelog, network_data_format, label names, input spec,
                              "sha256" of the weights, and an "alsseg" block (preprocessing,
                              network, patch size, anatomy, recipe) — everything needed to predict
      models/model.pt         a plain state_dict (tensors only), read with weights_only=True
      docs/README.md          the model card

Loading (:func:`alsseg.seg.infer.load_bundle`) checks the weights' sha256 against
``metadata.json`` and refuses pickled Python objects (``torch.load(..., weights_only=True)``),
raising :class:`InputError` either way.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from alsseg.io.atomic import atomic_path, write_text_atomic
from alsseg.io.errors import InputError
from alsseg.labels import load_anatomy
from alsseg.seg.recipe import PreprocessConfig, recipe_from_dict
from alsseg.seg.store import (DEFAULT_MODEL, MODELS_DIR, WEIGHTS, list_bundles, load_run_spec, member_checksums,
                              read_metadata, resolve_bundle, safe_load_weights, sha256_of)

__all__ = ["DEFAULT_MODEL", "MODELS_DIR", "WEIGHTS", "export_bundle", "list_bundles", "load_run_spec",
           "network_data_format", "read_metadata", "rejoined_members", "resolve_bundle", "safe_load_weights",
           "sha256_of"]


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


def _member_state(source: str | Path) -> dict:
    """Weights of an ensemble member: a bundle (name or folder; checksum verified) or a checkpoint file."""
    p = Path(source)
    if p.is_file():
        return safe_load_weights(p)
    bundle = resolve_bundle(source)
    meta = read_metadata(bundle)
    return safe_load_weights(bundle / WEIGHTS, meta.get("sha256", {}).get(WEIGHTS))


def rejoined_members(run_dir: str | Path, spec: dict) -> tuple[list[dict], dict]:
    """The other members of the ensemble bundle a run was fine-tuned from (``alsseg train --init
    BUNDLE [--init-member K]``): every member but K, in bundle order, checksum-verified.

    Returns ``(state dicts, provenance)``; provenance ``{"bundle", "version", "replaced_member"}``.

    Raises:
        InputError: the run did not start from a bundle, or does not record its members' sha256
            (runs from before alsseg recorded them), or the bundle is gone or has changed since.
    """
    where = Path(run_dir) / "run.json"
    init, k, recorded = spec.get("init"), spec.get("init_member"), spec.get("init_sha256")
    if not init:
        raise InputError(where, "the run was not fine-tuned from a bundle (no --init); there is nothing to rejoin")
    if not recorded:
        raise InputError(where, "does not record the sha256 of the bundle it started from (an older run); "
                                "join members with --add-member instead")
    try:
        bundle = resolve_bundle(init)
    except InputError:  # a shipped bundle whose install folder moved: found by name, proven by sha256 below
        bundle = resolve_bundle(Path(init).name)
    meta = read_metadata(bundle)
    members = member_checksums(meta)
    if [sha for _, sha in members] != recorded:
        raise InputError(bundle, "is not the bundle the run was fine-tuned from (its members' sha256 "
                                 "changed since); rejoin needs the same ensemble")
    states = [safe_load_weights(bundle / m, sha) for i, (m, sha) in enumerate(members) if i != k]
    return states, {"bundle": str(bundle), "version": meta.get("version"), "replaced_member": k}


def export_bundle(run_dir: str | Path, out_dir: str | Path, *, name: str, version: str = "0.1.0",
                  changelog: str = "first release", description: str = "", checkpoint: str = "best",
                  model_card: str | None = None, extra: dict | None = None,
                  extra_members: list[str | Path] | tuple = (), rejoin: bool = False) -> Path:
    """Write a bundle from a training run.

    ``extra_members``: further weights (another bundle's folder or name, or a run's checkpoint
    file) of the same network and preprocessing; the bundle is then an ensemble whose prediction
    is the mean of the members' class probabilities (``alsseg.members`` in ``metadata.json``).
    ``rejoin``: a run fine-tuned from member K of an ensemble bundle goes back into that ensemble
    in K's place (:func:`rejoined_members`): the run's weights first, then the bundle's other
    members, then ``extra_members``; recorded as ``alsseg.rejoined``.

    Raises:
        InputError: not a run, checkpoint missing, output folder already holds a different bundle
            version with the same version string; with ``rejoin``, see :func:`rejoined_members`.
    """
    import numpy
    import torch

    import monai

    run_dir = Path(run_dir)
    spec = load_run_spec(run_dir)
    ck = run_dir / "checkpoints" / f"{checkpoint}.pt"
    state = safe_load_weights(ck)
    others = [(str(source), _member_state(source)) for source in extra_members]
    if rejoin:
        kept, provenance = rejoined_members(run_dir, spec)
        others = [(provenance["bundle"], s) for s in kept] + others
        extra = {**(extra or {}), "rejoined": provenance}
    for source, member_state in others:  # every member checked before anything is written
        if set(member_state) != set(state) or any(member_state[n].shape != state[n].shape for n in state):
            raise InputError(source, "ensemble member weights do not fit the run's network")
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
    members = [WEIGHTS]
    for k, (_, member_state) in enumerate(others, start=1):
        members.append(f"models/member_{k}.pt")
        with atomic_path(out / members[-1], suffix=".pt") as tmp:
            torch.save({n: v.detach().cpu().contiguous() for n, v in member_state.items()}, tmp)
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
        "sha256": {m: sha256_of(out / m) for m in members},
        "trained_on": {"machine": platform.processor() or platform.machine(), **spec.get("trained_on", {})},
        "alsseg": {"anatomy": recipe.anatomy, "preprocess": asdict(pre), "network": asdict(net),
                   "patch_size": list(recipe.train.patch_size), "recipe": recipe.to_dict(),
                   "checkpoint": {"file": ck.name, **spec.get("best", {})}, "members": members,
                   **(extra or {})},
    }
    meta["alsseg"] = json.loads(json.dumps(meta["alsseg"]))
    write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    if model_card is not None:
        write_text_atomic(out / "docs" / "README.md", model_card)
    for f in [out / m for m in members] + [meta_path, out / "docs" / "README.md"]:
        if f.is_file():
            f.chmod(0o644)  # shipped files are world-readable (temporary files start as 0600)
    return out
