"""Run one fuzz harness under atheris (libFuzzer), or replay inputs without it.

    python fuzz/run.py NAME [libFuzzer flags...]   e.g. -max_total_time=60 -runs=1000000
    python fuzz/run.py NAME --replay FILE...       re-run saved inputs (crash-* files)
    python fuzz/run.py --list

The corpus lives in fuzz/corpus/NAME (created and seeded from harnesses.seeds(NAME) on
first use); crashing inputs are written to fuzz/crashes/NAME/.  libFuzzer prints
"Done N runs in S second(s)" at the end: N is the number of inputs executed.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    if argv[1] == "--list":
        import harnesses
        print("\n".join(harnesses.HARNESSES))
        return 0
    name, rest = argv[1], argv[2:]
    if rest[:1] == ["--replay"]:
        import harnesses
        fn = harnesses.HARNESSES[name]
        for path in rest[1:]:
            fn(Path(path).read_bytes())
            print(f"{path}: ok")
        return 0

    import atheris
    with atheris.instrument_imports(include=["tlslab"]):
        import harnesses  # noqa: F401  (tlslab is imported, and instrumented, from here)
        # the engine imports some modules lazily (certificates, ocsp, ...): import all of
        # tlslab.proto now, or their code would run uninstrumented (no coverage feedback)
        import importlib
        import pkgutil

        import tlslab.proto
        for mod in pkgutil.walk_packages(tlslab.proto.__path__, "tlslab.proto."):
            importlib.import_module(mod.name)
    fn = harnesses.HARNESSES[name]
    root = Path(os.environ.get("TLSLAB_FUZZ_DIR") or HERE)  # the smoke test uses a temp dir
    corpus = root / "corpus" / name
    crashes = root / "crashes" / name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    for seed in harnesses.seeds(name):
        p = corpus / hashlib.sha1(seed).hexdigest()
        if not p.exists():
            p.write_bytes(seed)
    args = [argv[0], *rest, f"-artifact_prefix={crashes}/", str(corpus)]
    if not any(a.startswith("-max_len=") for a in rest):
        args.insert(1, "-max_len=8192")
    atheris.Setup(args, fn)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
