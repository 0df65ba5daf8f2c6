"""Run the fuzz targets one after the other, each in its own process (tools/fuzz.sh is the
entry point; it installs atheris first).

    run.py [--budget SECONDS | --runs N [--chunk N]] [--targets a,b,...]
           [--engine atheris|random] [--out DIR] [--timeout SECONDS]
    run.py --replay FILE...      (each in a folder named after its target: crashes/<target>/,
                                  corpus/<target>/, build/fuzz/<target>/)

Each target starts from its committed corpus (corpus/<target>/, read only) and writes new
inputs to DIR/<target>/corpus and reproducers to DIR/<target>/ (DIR defaults to
build/fuzz). Prints executions per target; exits 1 if any target found something.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MAX_LEN = {"load": 16384}            # by target-name prefix; 4096 otherwise


def targets() -> list[str]:
    return sorted(p.stem[len("fuzz_"):] for p in HERE.glob("fuzz_*.py"))


def environment() -> dict:
    env = dict(os.environ)
    if env.get("SPARSEKERN_LIB"):     # a library built by hand: test the source tree with it
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get(
            "PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OPENBLAS_NUM_THREADS", "1")   # the float64 reference
    env.setdefault("PYTHONHASHSEED", "0")
    return env


WARM = """
import importlib, sys
from pathlib import Path
for name in sys.argv[1:]:
    target = importlib.import_module("fuzz_" + name)
    for seed in sorted(Path("corpus", name).iterdir()):
        try:
            target.test_one_input(seed.read_bytes())
        except Exception:
            pass
"""


def warm_numba_cache(names, env: dict) -> None:
    """Compile the numba kernels the seeds reach into the cache every fuzzing process then
    loads, so that their time budgets go to fuzzing."""
    subprocess.run([sys.executable, "-c", WARM, *names], env=dict(env, SK_FUZZ_INSTRUMENT="0"),
                   cwd=str(HERE), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def describe(env: dict) -> str:
    code = ("import sparsekern as sk, sys; i = sk.info(); "
            "print(sk.__file__, i['backend'], i['isas_available'], i.get('library', ''))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=str(HERE))
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) \
        else "?"


def run_target(name: str, args, env: dict) -> dict:
    """The target for --budget seconds, or for --runs executions in processes of at most
    --chunk executions each (a fuzzing process's memory grows slowly, see tools/README.md;
    each process resumes from the corpus the previous ones grew)."""
    out = Path(args.out) / name
    if out.exists():
        shutil.rmtree(out)
    (out / "corpus").mkdir(parents=True)
    max_len = next((v for k, v in MAX_LEN.items() if name.startswith(k)), 4096)
    cmd = [sys.executable, str(HERE / f"fuzz_{name}.py"), f"-max_len={max_len}",
           f"-timeout={args.timeout}", "-rss_limit_mb=2048", f"-artifact_prefix={out}/",
           "-print_final_stats=1", str(out / "corpus"), str(HERE / "corpus" / name)]
    if args.engine:
        cmd.append(f"--engine={args.engine}")
    if args.runs:
        chunks = [min(args.chunk, args.runs - i) for i in range(0, args.runs, args.chunk)]
    else:
        chunks = [None]
    log = out / "log.txt"
    start, execs, rc = time.time(), 0, 0
    with open(log, "w") as f:
        for i, runs in enumerate(chunks):
            limit = [f"-runs={runs}", f"-seed={i + 1}"] if runs else \
                [f"-max_total_time={args.budget}"]
            f.write(f"== {' '.join(cmd + limit)}\n")
            f.flush()
            part = log.with_name(f"log-{i}.txt")
            with open(part, "w") as g:
                try:   # a process that hangs outside libFuzzer's per-input timeout stops here
                    rc = subprocess.run(cmd + limit, stdout=g, stderr=subprocess.STDOUT, env=env,
                                        cwd=str(HERE),
                                        timeout=None if runs else args.budget * 3 + 120).returncode
                except subprocess.TimeoutExpired:
                    rc = "hung"
            text = part.read_text(errors="replace")
            f.write(text)
            part.unlink()
            done = re.findall(r"stat::number_of_executed_units: (\d+)", text) or \
                re.findall(r"^#(\d+)\s", text, re.M)
            execs += int(done[-1]) if done else 0
            if rc != 0:
                break
    kinds = ("crash", "timeout", "oom", "leak") + (("current",) if rc else ())
    found = sorted(p for p in out.iterdir() if p.is_file() and p.name.startswith(kinds))
    return {"name": name, "rc": rc, "execs": execs, "seconds": time.time() - start,
            "found": found, "log": log}


def replay(files, env) -> int:
    bad = 0
    for f in files:
        p = Path(f).resolve()
        target = p.parent.name
        if target not in targets():
            print(f"{f}: the parent folder must name the target (one of {', '.join(targets())})")
            return 2
        rc = subprocess.run([sys.executable, str(HERE / f"fuzz_{target}.py"), "--replay", str(p)],
                            env=env, cwd=str(HERE)).returncode
        bad += rc != 0
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--budget", type=int, default=8, help="seconds per target (default 8)")
    ap.add_argument("--runs", type=int, default=0, help="executions per target instead of a time")
    ap.add_argument("--chunk", type=int, default=20000, help="executions per process with --runs")
    ap.add_argument("--targets", default="", help="comma-separated (default: all)")
    ap.add_argument("--engine", default="", help="atheris (default when installed) or random")
    ap.add_argument("--out", default=str(REPO / "build" / "fuzz"))
    ap.add_argument("--timeout", type=int, default=30, help="seconds one input may take")
    ap.add_argument("--replay", nargs="+", metavar="FILE")
    args = ap.parse_args()
    env = environment()
    if args.replay:
        return replay(args.replay, env)
    names = [t for t in args.targets.split(",") if t] or targets()
    unknown = set(names) - set(targets())
    if unknown:
        ap.error(f"unknown targets {sorted(unknown)}; available: {', '.join(targets())}")
    print(f"fuzzing {describe(env)}")
    start = time.time()
    env = dict(env, NUMBA_CACHE_DIR=str(Path(args.out).resolve() / "numba-cache"))
    warm_numba_cache(names, env)
    print(f"numba kernels compiled in {time.time() - start:.0f} s", flush=True)
    print(f"{'target':24s} {'executions':>10s} {'seconds':>8s} {'exec/s':>7s}  result", flush=True)
    results = []
    for name in names:
        r = run_target(name, args, env)
        results.append(r)
        ok = r["rc"] == 0 and not r["found"]
        status = "ok" if ok else f"FINDING (exit {r['rc']}; log {r['log']})"
        print(f"{name:24s} {r['execs']:10d} {r['seconds']:8.1f} "
              f"{r['execs'] / max(r['seconds'], 1e-9):7.0f}  {status}", flush=True)
        for p in r["found"]:
            print(f"    reproducer: {p}  (replay: tools/fuzz.sh --replay {p}; keep it as "
                  f"tests/fuzz/crashes/{name}/<what-it-is>)")
    total = sum(r["execs"] for r in results)
    print(f"{'total':24s} {total:10d} {sum(r['seconds'] for r in results):8.1f}")
    return 0 if all(r["rc"] == 0 and not r["found"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
