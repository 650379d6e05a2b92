"""Bundles: export layout and metadata, safe loading (checksum, weights_only), listing."""

import json

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


def test_an_ensemble_bundle_averages_its_members(tmp_path, tiny_run):
    """A bundle of a run plus the same weights again predicts exactly what the run alone does;
    a tampered member is refused; the members are listed with their checksums."""
    import json


    from alsseg.io.errors import InputError
    from alsseg.seg.bundle import export_bundle
    from alsseg.seg.infer import Segmenter

    run, _ = tiny_run
    single = export_bundle(run, tmp_path / "single", name="tiny")
    ens = export_bundle(run, tmp_path / "ens", name="tiny", extra_members=[run / "checkpoints" / "best.pt"])
    meta = json.loads((ens / "configs" / "metadata.json").read_text())
    assert meta["alsseg"]["members"] == ["models/model.pt", "models/member_1.pt"]
    assert set(meta["sha256"]) == set(meta["alsseg"]["members"])
    a, b = Segmenter.from_bundle(single), Segmenter.from_bundle(ens)
    assert type(b.model).__name__ == "MeanProbabilityEnsemble"
    assert a.networks == [a.model] and len(b.networks) == 2
    from alsseg.synth import Grid, make_subject, render_contrast

    img = render_contrast(make_subject(2), Grid.axial((96, 64, 2), (3.0, 3.0, 10.0)), "t1w")
    pa, pb = a.predict_full(img, probabilities=True)[1].data, b.predict_full(img, probabilities=True)[1].data
    assert np.allclose(pa, pb, atol=1e-5)
    (ens / "models" / "member_1.pt").write_bytes((ens / "models" / "member_1.pt").read_bytes()[:-8] + b"tampered")
    with pytest.raises(InputError, match="sha256"):
        Segmenter.from_bundle(ens)


def test_fine_tuning_starts_from_the_chosen_ensemble_member(tmp_path, tiny_run, capsys):
    """``alsseg train --init ENSEMBLE --init-member K`` starts from member K (a run with a learning
    rate of ~0 ends on exactly its weights); a member that does not exist, or --init-member
    without --init, is one line and exit 2."""
    import torch
    import yaml

    from alsseg.cli import main
    from alsseg.seg.bundle import export_bundle
    from alsseg.seg.store import safe_load_weights

    run, ds = tiny_run
    first = safe_load_weights(run / "checkpoints" / "best.pt")
    other = {k: (v + 0.5 if v.is_floating_point() else v) for k, v in first.items()}
    torch.save(other, tmp_path / "other.pt")
    ens = export_bundle(run, tmp_path / "ens", name="tiny", extra_members=[tmp_path / "other.pt"])
    recipe = yaml.safe_load((run / "run.json").read_text())["recipe"]
    recipe["train"] = {**recipe["train"], "learning_rate": 1e-12, "iterations": 4, "weight_decay": 0.0}
    rfile = tmp_path / "r.yaml"
    rfile.write_text(yaml.safe_dump(recipe))
    base = ["train", "--recipe", str(rfile), "--data", str(ds), "--init", str(ens), "-q", "--device", "cpu"]
    for k, want in ((0, first), (1, other)):
        assert main(base + ["--out", str(tmp_path / f"run{k}"), "--init-member", str(k)]) == 0
        got = safe_load_weights(tmp_path / f"run{k}" / "checkpoints" / "last.pt")
        assert all(torch.allclose(got[n], want[n], atol=1e-6) for n in want if want[n].is_floating_point())
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "run2"), "--init-member", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 2 member(s); member 2 does not exist" in err[0]
    assert not (tmp_path / "run2").exists()
    assert main(["train", "--recipe", str(rfile), "--data", str(ds), "--out", str(tmp_path / "run3"),
                 "--init-member", "1", "-q"]) == 2
    assert "--init-member needs --init" in capsys.readouterr().err


def test_rejoin_puts_the_fine_tuned_member_back_in_its_ensemble(tmp_path, tiny_run, capsys):
    """``alsseg export RUN --rejoin`` of a run fine-tuned from member 1 of a two-member bundle gives
    a bundle of the run's weights and the untouched member 0; the starting bundle's sha256 are
    checked: a changed bundle, a run without --init and a run that does not record the checksums
    are each one line and exit 2, with nothing written."""
    import shutil

    import torch
    import yaml

    from alsseg.cli import main
    from alsseg.seg.infer import Segmenter
    from alsseg.seg.store import safe_load_weights

    run, ds = tiny_run
    first = safe_load_weights(run / "checkpoints" / "best.pt")
    other = {k: (v + 0.5 if v.is_floating_point() else v) for k, v in first.items()}
    torch.save(other, tmp_path / "other.pt")
    ens = export_bundle(run, tmp_path / "ens", name="tiny", version="0.3.0", extra_members=[tmp_path / "other.pt"])
    recipe = yaml.safe_load((run / "run.json").read_text())["recipe"]
    recipe["train"] = {**recipe["train"], "learning_rate": 1e-3, "iterations": 4, "weight_decay": 0.0}
    rfile = tmp_path / "r.yaml"
    rfile.write_text(yaml.safe_dump(recipe))
    tuned_run = tmp_path / "tuned"
    assert main(["train", "--recipe", str(rfile), "--data", str(ds), "--init", str(ens), "--init-member", "1",
                 "--out", str(tuned_run), "-q", "--device", "cpu"]) == 0
    assert len(json.loads((tuned_run / "run.json").read_text())["init_sha256"]) == 2
    tuned = safe_load_weights(tuned_run / "checkpoints" / "last.pt")
    out = tmp_path / "rejoined"
    assert main(["export", str(tuned_run), "--name", "tiny", "--out", str(out), "--checkpoint", "last",
                 "--rejoin"]) == 0
    meta = json.loads((out / "configs" / "metadata.json").read_text())
    assert meta["alsseg"]["members"] == ["models/model.pt", "models/member_1.pt"]
    assert meta["alsseg"]["rejoined"] == {"bundle": str(ens), "version": "0.3.0", "replaced_member": 1}
    nets = Segmenter.from_bundle(out).networks
    got0, got1 = (n.state_dict() for n in nets)
    assert all(torch.equal(got0[n], tuned[n]) for n in tuned)  # the fine-tuned network, first
    assert all(torch.equal(got1[n], first[n]) for n in first)  # member 0, untouched
    assert not all(torch.equal(tuned[n], other[n]) for n in other if other[n].is_floating_point())

    def refused(run_dir, why):
        capsys.readouterr()
        dest = tmp_path / f"refused_{run_dir.name}"
        assert main(["export", str(run_dir), "--name", "tiny", "--out", str(dest), "--checkpoint", "last",
                     "--rejoin"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0], err
        assert not dest.exists()

    refused(run, "there is nothing to rejoin")  # trained from scratch
    old = tmp_path / "old_run"
    shutil.copytree(tuned_run, old)
    spec = json.loads((old / "run.json").read_text())
    del spec["init_sha256"]
    (old / "run.json").write_text(json.dumps(spec))
    refused(old, "does not record the sha256")
    export_bundle(run, ens, name="tiny", version="0.3.1", extra_members=[run / "checkpoints" / "best.pt"])
    refused(tuned_run, "is not the bundle the run was fine-tuned from")


def test_a_member_that_does_not_fit_is_refused_before_anything_is_written(tmp_path, tiny_run):
    run, _ = tiny_run
    first = safe_load_weights(run / "checkpoints" / "best.pt")
    name = next(n for n, v in first.items() if v.is_floating_point() and v.ndim > 1)
    torch.save({**first, name: torch.zeros(3, 3)}, tmp_path / "misfit.pt")
    with pytest.raises(InputError, match="do not fit the run's network"):
        export_bundle(run, tmp_path / "out", name="tiny", extra_members=[tmp_path / "misfit.pt"])
    assert not (tmp_path / "out").exists()


def test_member_checksums_in_bundle_order():
    from alsseg.seg.store import member_checksums

    meta = {"alsseg": {"members": [WEIGHTS, "models/member_1.pt"]},
            "sha256": {WEIGHTS: "a" * 64, "models/member_1.pt": "b" * 64}}
    assert member_checksums(meta) == [(WEIGHTS, "a" * 64), ("models/member_1.pt", "b" * 64)]
    assert member_checksums({"alsseg": {}, "sha256": {WEIGHTS: "c" * 64}}) == [(WEIGHTS, "c" * 64)]
    assert member_checksums({"alsseg": {"members": ["models/member_9.pt"]}}) == [("models/member_9.pt", None)]
