"""``tlslab demo``: part 1 (the explained handshake) and part 2 (a broken server, a real
client failing, diagnose, the fix applied), offline and quick."""
from __future__ import annotations

import sys

from conftest import run_bounded


def _demo(*args):
    return run_bounded([sys.executable, "-m", "tlslab", "demo", *args], timeout=60,
                       env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})


def test_demo_shows_a_broken_server_diagnosed_and_fixed():
    rc, out, err = _demo()
    assert rc == 0, err
    assert "The handshake, as the client saw it" in out
    # part 2: the real client's own error, diagnose's cause with the AIA fetch, the fix
    assert "CERTIFICATE_VERIFY_FAILED" in out and "unable to get local issuer certificate" in out
    assert "missing-intermediate" in out and "completes the chain" in out
    assert "Python's ssl connects" in out
    assert "Traceback" not in out + err


def test_handshake_only_skips_part_2():
    rc, out, err = _demo("--handshake-only")
    assert rc == 0, err
    assert "The handshake, as the client saw it" in out
    assert "missing-intermediate" not in out
