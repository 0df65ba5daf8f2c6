"""Write the committed seed corpus: corpus/<target>/<seed name> for every fuzz target,
from each target's seeds() (deterministic: rerunning it gives the same files).

    python tests/fuzz/make_corpus.py [target ...]
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def targets() -> list[str]:
    return sorted(p.stem[len("fuzz_"):] for p in HERE.glob("fuzz_*.py"))


def main(names) -> None:
    total = 0
    for name in names or targets():
        seeds = importlib.import_module(f"fuzz_{name}").seeds()
        out = HERE / "corpus" / name
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            old.unlink()
        for seed_name, data in seeds.items():
            (out / seed_name).write_bytes(data)
        size = sum(len(d) for d in seeds.values())
        total += size
        print(f"{name:24s} {len(seeds):3d} seeds {size:8d} bytes")
    print(f"{'total':24s}     {total:8d} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
