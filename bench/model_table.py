#!/usr/bin/python3
"""Whole-model speed table (issue 8): `critdim bench` (pp512 and tg128, 2 threads, median of 5
runs) on synthetic models at real configurations, generation as a share of the memory bandwidth
measured in the same run, llama-bench on the same files where ../shared/llama.cpp runs on this
CPU, the larger configurations, and prompt processing at several prompt lengths.

  bench/model_table.py [--build build] [--models DIR] [--reps 5] [--types f32,f16,q8_0,q4_0,q4_k]
                       [--configs qwen2.5-0.5b:q8_0,gemma-2-2b:q4_k] [--prompts 128,512,2048]

Models are made once with `critdim synth --config C --type T --seed 1` into --models. The
bandwidth is critdim_bench_kernels' memory_read (a plain sum over 512 MiB) with the same thread
count, taken before and after the table; the "% of limit" column divides tg128 x file bytes by
the larger of the two.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def bandwidth(build, threads):
    """GB/s of a plain read over 512 MiB on `threads` threads (median of 5)."""
    exe = os.path.join(build, "bench", "critdim_bench_kernels")
    out = run([exe, "--benchmark_filter=memory_read/512MiB/threads/%d/" % threads,
               "--benchmark_repetitions=5", "--benchmark_format=json"])
    rates = [b["GB"] for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    return statistics.median(rates)


def llama_bench(shared, model, reps, threads):
    exe = os.path.join(shared, "llama.cpp", "bin", "llama-bench")
    try:
        out = subprocess.run([exe, "-m", model, "-p", "512", "-n", "128", "-t", str(threads), "-r", str(reps),
                              "-o", "json"], capture_output=True, text=True, timeout=3600)
    except OSError:
        return None
    if out.returncode != 0:
        return None  # e.g. "Illegal instruction": that build needs AVX-512
    res = {}
    for r in json.loads(out.stdout):
        res["pp512" if r["n_prompt"] else "tg128"] = r["avg_ts"]
    return res


def model_path(critdim, models, config, typ):
    path = os.path.join(models, "%s-%s.gguf" % (config, typ))
    if not os.path.exists(path):
        print("making %s ..." % path, file=sys.stderr)
        run([critdim, "synth", "--config", config, "--type", typ, "--seed", "1", "--out", path])
    return path


def bench(critdim, path, n_prompt, n_gen, reps, threads):
    res = json.loads(run([critdim, "bench", path, "-p", str(n_prompt), "-n", str(n_gen), "-t", str(threads),
                          "-r", str(reps), "--json"]))
    return {r["test"]: r["tokens_per_second_median"] for r in res["results"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--models", default="/tmp/critdim-bench-models")
    ap.add_argument("--shared", default=os.environ.get("CRITDIM_SHARED", os.path.join(ROOT, "..", "shared")))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default="f32,f16,q8_0,q4_0,q4_k", help="smollm2-135m types ('' for none)")
    ap.add_argument("--configs", default="qwen2.5-0.5b:q8_0,gemma-2-2b:q4_k",
                    help="further CONFIG:TYPE rows ('' for none)")
    ap.add_argument("--prompts", default="128,512,2048",
                    help="prompt lengths for the pp scaling rows on smollm2-135m q8_0 ('' for none)")
    a = ap.parse_args()
    critdim = os.path.join(a.build, "src", "cli", "critdim")
    os.makedirs(a.models, exist_ok=True)
    jobs = [("smollm2-135m", t) for t in a.types.split(",") if t]
    jobs += [tuple(c.split(":")) for c in a.configs.split(",") if c]
    paths = {job: model_path(critdim, a.models, *job) for job in jobs}

    bw_before = bandwidth(a.build, a.threads)
    print("memory read bandwidth, %d threads: %.1f GB/s (before the table)" % (a.threads, bw_before))
    print()
    print("| config | type | MiB | pp512 t/s | tg128 t/s | tg GB/s | llama.cpp pp512 | llama.cpp tg128 |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for job in jobs:
        path = paths[job]
        by = bench(critdim, path, 512, 128, a.reps, a.threads)
        size = os.path.getsize(path)
        peer = llama_bench(a.shared, path, a.reps, a.threads) or {}
        fmt = lambda v: "%.1f" % v if v else "n/a"
        rows.append((job, size, by["tg128"]))
        print("| %s | %s | %.1f | %.1f | %.1f | %.2f | %s | %s |" % (
            job[0], job[1], size / 2**20, by["pp512"], by["tg128"], size * by["tg128"] / 1e9,
            fmt(peer.get("pp512")), fmt(peer.get("tg128"))))
        sys.stdout.flush()
    bw_after = bandwidth(a.build, a.threads)
    bw = max(bw_before, bw_after)
    print()
    print("memory read bandwidth, %d threads: %.1f GB/s (after the table)" % (a.threads, bw_after))
    print()
    print("| config | type | tg128 limit t/s (bandwidth / bytes) | tg128 t/s | % of limit |")
    print("|---|---|---|---|---|")
    for job, size, tg in rows:
        limit = bw * 1e9 / size
        print("| %s | %s | %.1f | %.1f | %.0f %% |" % (job[0], job[1], limit, tg, 100 * tg / limit))
    lengths = [int(p) for p in a.prompts.split(",") if p]
    if lengths:
        path = model_path(critdim, a.models, "smollm2-135m", "q8_0")
        print()
        print("| smollm2-135m q8_0 | " + " | ".join("pp%d t/s" % n for n in lengths) + " |")
        print("|---|" + "---|" * len(lengths))
        cells = []
        for n in lengths:
            cells.append("%.1f" % bench(critdim, path, n, 0, a.reps, a.threads)["pp%d" % n])
        print("| %d threads | %s |" % (a.threads, " | ".join(cells)))


if __name__ == "__main__":
    main()
