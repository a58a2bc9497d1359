#!/usr/bin/python3
"""Whole-model speed table: critdim bench (pp512, tg128, 2 threads, 5 runs) on synthetic models
at real configurations, with generation as a share of a memory bandwidth measured in the same
run, and llama-bench's figures on the same files where ../shared/llama.cpp runs on this CPU.

  bench/model_table.py [--build build] [--models DIR] [--reps 5] [--types f32,f16,q8_0,q4_0,q4_k]
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def llama_bench(shared, model, reps):
    exe = os.path.join(shared, "llama.cpp", "bin", "llama-bench")
    try:
        out = subprocess.run([exe, "-m", model, "-p", "512", "-n", "128", "-t", "2", "-r", str(reps), "-o", "json"],
                             capture_output=True, text=True, timeout=3600)
    except OSError:
        return None
    if out.returncode != 0:
        return None  # e.g. "Illegal instruction": that build needs AVX-512
    res = {}
    for r in json.loads(out.stdout):
        key = "pp512" if r["n_prompt"] else "tg128"
        res[key] = r["avg_ts"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default="/tmp/critdim-bench-models")
    ap.add_argument("--shared", default=os.environ.get("CRITDIM_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--types", default="f32,f16,q8_0,q4_0,q4_k")
    ap.add_argument("--gemma", action="store_true", help="also gemma-2-2b Q4_K (pure Q4_K/Q6_K rows; slow)")
    a = ap.parse_args()
    critdim = os.path.join(a.build, "src", "cli", "critdim")
    os.makedirs(a.models, exist_ok=True)
    jobs = [("smollm2-135m", t) for t in a.types.split(",")]
    if a.gemma:
        jobs.append(("gemma-2-2b", "q4_k"))
    bw = os.path.join(a.build, "bench", "critdim_bench_kernels")
    print("| config | type | MiB | pp512 t/s | tg128 t/s | tg GB/s | llama.cpp pp512 | llama.cpp tg128 |")
    print("|---|---|---|---|---|---|---|---|")
    for config, typ in jobs:
        path = os.path.join(a.models, "%s-%s.gguf" % (config, typ))
        if not os.path.exists(path):
            run([critdim, "synth", "--config", config, "--type", typ, "--seed", "1", "--out", path])
        res = json.loads(run([critdim, "bench", path, "-p", "512", "-n", "128", "-t", "2", "-r", str(a.reps), "--json"]))
        by = {r["test"]: r for r in res["results"]}
        pp = by["pp512"]["tokens_per_second_median"]
        tg = by["tg128"]["tokens_per_second_median"]
        size = os.path.getsize(path)
        peer = llama_bench(a.shared, path, a.reps) or {}
        fmt = lambda v: "%.1f" % v if v else "n/a"
        print("| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s |" % (
            config, typ, size / 2**20, pp, tg, size * tg / 1e9, fmt(peer.get("pp512")), fmt(peer.get("tg128"))))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
