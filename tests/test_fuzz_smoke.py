"""Smoke run of every coverage-guided fuzz harness in fuzz/ (issue 14): a few thousand
inputs each, bounded in time, starting from the real seeds.  A crash (an exception other
than TLSError out of a parser, or internal_error from a connection) fails the test with
libFuzzer's report.  ``make fuzz`` runs the same harnesses for longer."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris: the test extra)")

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "fuzz" / "run.py"
sys.path.insert(0, str(ROOT / "fuzz"))
from harnesses import HARNESSES  # noqa: E402

RUNS, SECONDS = 3000, 6


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(HARNESSES))
def test_fuzz_harness_smoke(name, tmp_path):
    env = dict(os.environ, TLSLAB_FUZZ_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(RUN), name, f"-runs={RUNS}", f"-max_total_time={SECONDS}",
                           "-max_len=4096", "-seed=1"],
                          capture_output=True, text=True, env=env, timeout=110, cwd=ROOT)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"fuzz/{name} crashed:\n{report[-6000:]}"
    done = re.search(r"Done (\d+) runs in (\d+) second", report)
    assert done and int(done.group(1)) > 0, report[-2000:]
