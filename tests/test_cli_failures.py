"""The failure contract of every verb (alsseg.cli.failures): one line, the right exit code,
warnings as one clean line, a bug reported as such (traceback only with --debug), partial
outputs undone."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path


from alsseg.cli.failures import run_verb
from alsseg.io.atomic import output_transaction, write_text_atomic
from alsseg.io.errors import InputError
from alsseg.io.validate import warn_input


def _args(func, **kw):
    return argparse.Namespace(func=func, debug=kw.pop("debug", False), quiet=kw.pop("quiet", False), **kw)


def test_warnings_print_as_one_clean_line(capsys):
    def verb(args):
        warn_input("scan.json", "EchoTime assumed milliseconds")
        warnings.warn("a library's\n  two-line warning", UserWarning)
        warnings.warn("a library's\n  two-line warning", UserWarning)  # printed once
        return 0

    assert run_verb(_args(verb)) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["alsseg: warning: scan.json: EchoTime assumed milliseconds",
                                "alsseg: warning: a library's two-line warning"]
    assert "warnings.warn" not in err and ".py:" not in err


def test_quiet_silences_warnings(capsys):
    def verb(args):
        warn_input("x", "y")
        return 0

    assert run_verb(_args(verb, quiet=True)) == 0
    assert capsys.readouterr().err == ""


def test_bug_is_one_line_pointing_to_the_tracker(capsys):
    def verb(args):
        return {}["missing"]

    assert run_verb(_args(verb)) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("alsseg: error: unexpected KeyError: 'missing'") and "report it" in err
    assert "Traceback" not in err
    assert run_verb(_args(verb, debug=True)) == 1
    assert "Traceback" in capsys.readouterr().err


def test_failed_verb_undoes_its_writes(tmp_path, capsys):
    old = tmp_path / "kept.txt"
    old.write_text("before")

    def verb(args):
        write_text_atomic(tmp_path / "new" / "deep" / "a.txt", "a")
        write_text_atomic(old, "overwritten")
        raise InputError(tmp_path / "b", "bad")

    assert run_verb(_args(verb)) == 2
    assert capsys.readouterr().err.strip() == f"alsseg: error: {tmp_path / 'b'}: bad"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept.txt"]  # no file, no folder, no backup
    assert old.read_text() == "before"


def test_resumable_verb_keeps_finished_work(tmp_path):
    def verb(args):
        write_text_atomic(tmp_path / "done.txt", "a")
        raise InputError(None, "later session bad")

    assert run_verb(_args(verb, keep_partial=True)) == 2
    assert (tmp_path / "done.txt").exists()


def test_transaction_commits_and_leaves_no_backup(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("1")
    with output_transaction():
        write_text_atomic(f, "2")
    assert f.read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_bad_choice_is_one_line(capsys):
    from alsseg.cli import main

    assert main(["segment", "x.nii.gz", "--out", "o", "--side", "both"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "alsseg: error: segment: argument --side: invalid choice: 'both' (choose from 'R', 'L')"]
    assert not Path("o").exists()
