#!/usr/bin/python3
"""The Python module's overhead (issue 13, "Speed"): Model.run on 512 tokens against
`critdim dump` and `critdim bench` on the same model and tokens, and the callback hook's cost
per layer. Medians of REPS runs; nothing here is a test (the numbers depend on the machine).

    PYTHONPATH=build/python bench/python_overhead.py MODEL.gguf [--critdim build/src/cli/critdim] [-t 2]

MODEL: e.g. `critdim synth --config smollm2-135m --type q8_0 --seed 1 --out smollm2.gguf`.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import critdim


def median_seconds(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--critdim", default="build/src/cli/critdim")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()

    m = critdim.Model(a.model, threads=a.threads)
    ids = np.random.default_rng(0).integers(10, m.n_vocab, a.tokens).astype(np.int32).tolist()
    token_arg = ",".join(map(str, ids))
    out = {"model": a.model, "tokens": a.tokens, "threads": a.threads, "reps": a.reps, "n_layer": m.n_layer}

    # The engine alone: critdim bench's prompt processing (no hooks, last logits only).
    bench = json.loads(subprocess.run([a.critdim, "bench", a.model, "-p", str(a.tokens), "-n", "0", "-r", str(a.reps),
                                       "-t", str(a.threads), "--json"], check=True, capture_output=True, text=True).stdout)
    out["bench"] = bench

    with tempfile.TemporaryDirectory() as d:
        # `critdim dump`: a whole process (load, forward with resid_post captured, all logits, .npy files).
        dump = [a.critdim, "dump", a.model, "--tokens", token_arg, "--out", d + "/cli", "-t", str(a.threads)]
        out["dump_process_s"], _ = median_seconds(lambda: subprocess.run(dump, check=True), a.reps)

        # The same job as a Python process: import, load, run, np.save the same arrays.
        script = (f"import critdim, numpy as np; m = critdim.Model({a.model!r}, threads={a.threads}); "
                  f"l, c = m.run({ids!r}, hooks=['resid_post.*']); "
                  f"np.save({d!r} + '/logits.npy', l); np.save({d!r} + '/resid_post.npy', c['resid_post'])")
        py = [sys.executable, "-c", script]
        out["python_process_s"], _ = median_seconds(lambda: subprocess.run(py, check=True), a.reps)

    m.run(ids)  # warm: the context is sized once
    out["run_last_logits_s"], _ = median_seconds(lambda: m.run(ids, all_logits=False), a.reps)
    out["run_all_logits_s"], _ = median_seconds(lambda: m.run(ids), a.reps)
    out["run_resid_post_s"], _ = median_seconds(lambda: m.run(ids, hooks=["resid_post.*"]), a.reps)

    calls = []
    noop = lambda name, layer, x: calls.append(layer)  # noqa: E731
    out["run_callback_resid_post_s"], _ = median_seconds(lambda: m.run(ids, all_logits=False, hook=noop), a.reps)
    touch = lambda name, layer, x: x.__iadd__(0.0)  # noqa: E731  (a pass over the rows from NumPy)
    out["run_callback_add_s"], _ = median_seconds(lambda: m.run(ids, all_logits=False, hook=touch), a.reps)
    sites = ["resid_pre.*", "attn_out.*", "mlp_out.*", "resid_post.*"]
    out["run_callback_4_points_s"], _ = median_seconds(
        lambda: m.run(ids, all_logits=False, hook=noop, hook_at=sites), a.reps)

    pp = next(r for r in bench["results"] if r["test"].startswith("pp"))
    engine_s = a.tokens / pp["tokens_per_second_median"]
    L = m.n_layer
    out["derived"] = {
        "engine_forward_s (512 / bench pp t/s)": engine_s,
        "run_last_logits_vs_engine": out["run_last_logits_s"] / engine_s,
        "python_process_vs_dump_process": out["python_process_s"] / out["dump_process_s"],
        "callback_noop_ms_per_layer": 1e3 * (out["run_callback_resid_post_s"] - out["run_last_logits_s"]) / L,
        "callback_add_ms_per_layer": 1e3 * (out["run_callback_add_s"] - out["run_last_logits_s"]) / L,
        "callback_noop_us_per_site_4_points": 1e6 * (out["run_callback_4_points_s"] - out["run_last_logits_s"]) / (4 * L),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
