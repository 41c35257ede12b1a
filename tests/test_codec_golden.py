"""The codec gives exactly what the reference codec gave (tests/codec_golden.py).

For every recorded input (real handshake messages, extension and key-exchange bodies)
and its deterministic mutants: the same parsed objects (types, attribute order, nested
``raw``), name, summary, repr, field spans, rebuilt bytes, spans recorded while parsing,
and, for bad input, the same exception type, alert and message.
"""
from __future__ import annotations

import json

import pytest

from codec_golden import digest, load, mutant_outcome, mutants, outcome

GOLDEN = load()
CASES = GOLDEN["cases"]


def _diff(a, b, path="") -> str:
    """Where two JSON values first differ (for a readable failure)."""
    if type(a) is not type(b):
        return f"{path}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k, "<missing>") != b.get(k, "<missing>"):
                return _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    return f"{path}: {json.dumps(a)[:300]} != {json.dumps(b)[:300]}"


def test_fixture_is_substantial():
    specs = {c["parser"] for c in CASES}
    assert {"msg13", "msg12", "msg11"} <= specs
    assert len(CASES) >= 300 and sum(len(c["mutants"]) for c in CASES) >= 10_000


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_same_outcome_as_reference(case):
    raw = bytes.fromhex(case["hex"])
    got = outcome(case["parser"], raw)
    assert got == case["outcome"], _diff(got, case["outcome"])
    bad = []
    for i, (m, want) in enumerate(zip(mutants(case["parser"], raw), case["mutants"])):
        have = mutant_outcome(case["parser"], m)
        if have != want:
            full = outcome(case["parser"], m)
            bad.append(f"mutant {i} ({m.hex()}): "
                       + (_diff(have, want) if isinstance(want, dict) or isinstance(have, dict)
                          else f"success differs, now {json.dumps(full)[:600]} (digest {digest(full)})"))
    assert not bad, "\n".join(bad[:5])
