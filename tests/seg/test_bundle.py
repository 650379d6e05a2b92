"""Bundles: export layout and metadata, safe loading (checksum, weights_only), listing."""

import json
import pickle

import numpy as np
import pytest
import torch

from alsseg.io.errors import InputError
from alsseg.seg.bundle import WEIGHTS, export_bundle, resolve_bundle, safe_load_weights, sha256_of
from alsseg.seg.infer import load_bundle


@pytest.fixture
def bundle(tiny_run, tmp_path):
    run, _ = tiny_run
    return export_bundle(run, tmp_path / "tiny-bundle", name="tiny", version="0.2.0", changelog="test",
                         model_card="# tiny\n")


def test_export_layout_and_metadata(bundle):
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    for key in ("version", "changelog", "network_data_format", "label_names", "sha256", "monai_version"):
        assert key in meta
    assert meta["version"] == "0.2.0" and meta["changelog"]["0.2.0"] == "test"
    assert meta["label_names"]["1"] == "TA_R" and meta["label_names"]["17"] == "GL_L"
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == 8
    assert meta["sha256"][WEIGHTS] == sha256_of(bundle / WEIGHTS)
    assert (bundle / "docs" / "README.md").read_text() == "# tiny\n"
    seg = load_bundle(bundle)
    assert seg.patch_size == (32, 32) and seg.preprocess.target_spacing_mm == (3.0, 3.0)


def test_wrong_checksum_refused(bundle):
    w = bundle / WEIGHTS
    state = torch.load(w, weights_only=True)
    k = next(iter(state))
    state[k] = state[k] + 1
    torch.save(state, w)
    with pytest.raises(InputError, match="sha256"):
        load_bundle(bundle)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_object_refused(bundle, capsys):
    w = bundle / WEIGHTS
    torch.save({"weight": torch.zeros(2), "evil": Evil()}, w)
    meta_p = bundle / "configs" / "metadata.json"
    meta = json.loads(meta_p.read_text())
    meta["sha256"][WEIGHTS] = sha256_of(w)  # even with a matching checksum
    meta_p.write_text(json.dumps(meta))
    with pytest.raises(InputError, match="refused"):
        load_bundle(bundle)
    assert "pwned" not in capsys.readouterr().out


def test_not_a_bundle(tmp_path):
    with pytest.raises(InputError, match="no such model bundle"):
        resolve_bundle(tmp_path / "nothing")
    with pytest.raises(InputError, match="missing"):
        safe_load_weights(tmp_path / "none.pt")


def test_export_of_a_non_run_refused(tmp_path):
    with pytest.raises(InputError, match="not a training run"):
        export_bundle(tmp_path, tmp_path / "b", name="x")


def test_cli_export_and_models(tiny_run, tmp_path, capsys):
    from alsseg.cli import main

    run, _ = tiny_run
    out = tmp_path / "b2"
    assert main(["export", str(run), "--name", "b2", "--out", str(out)]) == 0
    assert (out / WEIGHTS).is_file()
    assert main(["models", "--verify"]) == 0
    text = capsys.readouterr().out
    assert "name\tversion" in text or "no bundles" in text
