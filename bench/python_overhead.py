#!/usr/bin/python3
"""The Python module's overhead (issue 13, "Speed"), on a loaded 2-core machine: measurements
that are compared run interleaved (A, B, A, B, ...) so that load changes hit both alike; the
report gives each one's median and the median of the per-pair ratios. Nothing here is a test.

    PYTHONPATH=build/python bench/python_overhead.py MODEL.gguf [--critdim build/src/cli/critdim] [-t 2]

1. `critdim dump MODEL --tokens <512 ids>` (a process: load, forward with resid_post captured,
   all logits, .npy files) against the same job as a Python process (import, load, m.run with
   hooks=["resid_post.*"], np.save of the same two arrays).
2. The forward pass alone, `critdim bench -p 512 -n 0` (its pp512 time), against
   m.run(ids, all_logits=False) in this process, and m.run with every layer's resid_post and all
   logits captured.
3. The callback hook per site: m.run with a no-op callback at every site of every layer
   (4 x n_layer calls) against m.run without, on the same model with a short prompt and many
   runs; and the cost of touching x from NumPy (x += 0) on 512 rows of n_embd.

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


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(a, b, reps):
    """Medians of a and b, and the median of the ratios b/a, over reps alternating pairs."""
    ta, tb = [], []
    for _ in range(reps):
        ta.append(a())
        tb.append(b())
    return {"a_s": statistics.median(ta), "b_s": statistics.median(tb),
            "ratio_b_over_a": statistics.median(y / x for x, y in zip(ta, tb)), "a_all": ta, "b_all": tb}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--critdim", default="build/src/cli/critdim")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--tokens", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--callback-reps", type=int, default=41)
    ap.add_argument("--callback-tokens", type=int, default=8)
    a = ap.parse_args()

    m = critdim.Model(a.model, threads=a.threads)
    ids = np.random.default_rng(0).integers(10, m.n_vocab, a.tokens).astype(np.int32).tolist()
    out = {"model": a.model, "tokens": a.tokens, "threads": a.threads, "reps": a.reps, "n_layer": m.n_layer}

    with tempfile.TemporaryDirectory() as d:
        dump = [a.critdim, "dump", a.model, "--tokens", ",".join(map(str, ids)), "--out", d + "/cli",
                "-t", str(a.threads)]
        script = (f"import critdim, numpy as np; m = critdim.Model({a.model!r}, threads={a.threads}); "
                  f"l, c = m.run({ids!r}, hooks=['resid_post.*']); "
                  f"np.save({d!r} + '/logits.npy', l); np.save({d!r} + '/resid_post.npy', c['resid_post'])")
        out["1_dump_process_vs_python_process"] = interleaved(
            lambda: timed(lambda: subprocess.run(dump, check=True)),
            lambda: timed(lambda: subprocess.run([sys.executable, "-c", script], check=True)), a.reps)

    bench = [a.critdim, "bench", a.model, "-p", str(a.tokens), "-n", "0", "-r", "1", "-t", str(a.threads), "--json"]

    def engine_seconds():
        r = json.loads(subprocess.run(bench, check=True, capture_output=True, text=True).stdout)
        return a.tokens / r["results"][0]["tokens_per_second_median"]

    m.run(ids)  # the context is sized once
    out["2_engine_vs_run_last_logits"] = interleaved(engine_seconds, lambda: timed(lambda: m.run(ids, all_logits=False)),
                                                     a.reps)
    out["2_run_last_logits_vs_run_resid_post_all_logits"] = interleaved(
        lambda: timed(lambda: m.run(ids, all_logits=False)),
        lambda: timed(lambda: m.run(ids, hooks=["resid_post.*"])), a.reps)

    short = ids[: a.callback_tokens]
    every_site = ["resid_pre.*", "attn_out.*", "mlp_out.*", "resid_post.*"]
    noop = lambda name, layer, x: None  # noqa: E731
    m.run(short, hook=noop, hook_at=every_site)
    cb = interleaved(lambda: timed(lambda: m.run(short, all_logits=False)),
                     lambda: timed(lambda: m.run(short, all_logits=False, hook=noop, hook_at=every_site)),
                     a.callback_reps)
    n_sites = 4 * m.n_layer
    cb["per_site_us"] = 1e6 * (cb["b_s"] - cb["a_s"]) / n_sites
    del cb["a_all"], cb["b_all"]
    out["3_callback_noop_every_site"] = cb
    x = np.random.default_rng(1).standard_normal((a.tokens, m.n_embd)).astype(np.float32)
    touches = [timed(lambda: x.__iadd__(0.0)) for _ in range(201)]
    out["3_numpy_x_add_us_per_site"] = 1e6 * statistics.median(touches)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
