"""Progress bars draw on a terminal only: piped or redirected stderr gets no progress lines."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alsseg.progress import is_terminal, progress_bar

REPO = Path(__file__).resolve().parents[1]


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_is_terminal():
    assert is_terminal(FakeTerminal())
    assert not is_terminal(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)  # isatty on a closed stream raises ValueError
    assert not is_terminal(object())  # no isatty at all


def test_bar_draws_on_a_terminal_only():
    tty, pipe = FakeTerminal(), io.StringIO()
    for stream in (tty, pipe):
        assert list(progress_bar(range(5), desc="counting", unit="thing", stream=stream)) == list(range(5))
    assert "counting" in tty.getvalue() and "5/5" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_quiet_bar_draws_nothing_on_a_terminal():
    tty = FakeTerminal()
    bar = progress_bar(total=3, desc="quiet", show=False, stream=tty)
    bar.update(3)
    bar.set_postfix_str("done")
    bar.close()
    assert tty.getvalue() == ""


def test_default_stream_is_stderr_at_call_time(monkeypatch):
    tty = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", tty)
    bar = progress_bar(total=2, desc="on stderr")
    bar.update(2)
    bar.close()
    assert "on stderr" in tty.getvalue()


@pytest.mark.parametrize("terminal", [True, False])
def test_voxel_fits_follow_the_terminal(monkeypatch, terminal):
    """The chunked voxel loop of relax (every T2 / T1 / B1 fit) uses the helper."""
    from alsseg.relax._chunks import map_chunks

    stream = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    out = map_chunks(lambda y: {"s": y.sum(axis=1)}, np.ones((40, 3)), chunk_voxels=8, progress=True, desc="sums")
    np.testing.assert_array_equal(out["s"], np.full(40, 3.0))
    assert ("sums" in stream.getvalue()) is terminal


@pytest.fixture
def small_mese(tmp_path):
    """A 4×4×2 mono-exponential MESE (T2 40 ms, 8 echoes, ESP 10 ms) with its sidecar."""
    import nibabel as nib

    te_ms = 10.0 * np.arange(1, 9)
    data = 1000.0 * np.exp(-te_ms / 40.0) * np.ones((4, 4, 2, 1))
    path = tmp_path / "sub-01_MESE.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.diag([1.5, 1.5, 7.0, 1.0])), str(path))
    path.with_name("sub-01_MESE.json").write_text(json.dumps({"EchoTime": (te_ms / 1000).tolist(),
                                                              "RepetitionTime": 4.0}))
    return path


def _fit_t2(path: Path, out: Path, stderr) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "alsseg", "fit-t2", str(path), "--out", str(out), "--model", "mono",
           "--chunk-voxels", "8"]
    return subprocess.run(cmd, cwd=path.parent, stdout=subprocess.PIPE, stderr=stderr, timeout=300)


def test_a_verb_with_piped_stderr_prints_no_progress(small_mese, tmp_path):
    res = _fit_t2(small_mese, tmp_path / "piped", subprocess.PIPE)
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert (tmp_path / "piped" / "sub-01_desc-mono_T2map.nii.gz").exists()
    assert "\r" not in err and "vox" not in err and "%|" not in err, err


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this platform")
def test_a_verb_on_a_terminal_shows_its_bar(small_mese, tmp_path):
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    try:
        res = _fit_t2(small_mese, tmp_path / "tty", slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the terminal has no writer left (Linux)
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    seen = b"".join(chunks).decode(errors="replace")
    assert res.returncode == 0, seen
    assert "vox" in seen and "mono T2" in seen, seen
