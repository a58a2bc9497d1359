"""Running 1,000 prompts through Model.run (captures, a plan, a callback) does not grow the
process's resident memory by more than BOUND once warm: the context is reused and every
array handed to Python is freed with it."""
import numpy as np

import critdim

BOUND_MIB = 8  # allocator slack; leaking the arrays of one run per run would be far above it (checked)


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_thousand_prompts_do_not_grow_resident_memory(shared):
    m = critdim.Model(str(shared / "golden" / "models" / "stories260K-f32.gguf"), threads=2)
    plan = critdim.Plan.from_vectors(np.ones(m.n_embd, np.float32), layers="all", alpha=0.01)
    prompts = [f"Once upon a time there was a {w} who" for w in ("cat", "dog", "little girl", "big red ball")]

    def one(i):
        hook = (lambda name, layer, x: x.__imul__(1.0)) if i % 10 == 0 else None
        logits, cache = m.run(prompts[i % len(prompts)], hooks=["resid_post.*", "attn_out.1"], steer=plan, hook=hook)
        assert logits.shape[1] == m.n_vocab and cache["resid_post"].shape[0] == m.n_layer
        return logits.nbytes + cache["resid_post"].nbytes + cache["attn_out.1"].nbytes

    for i in range(100):  # warm up: the context reaches its largest size, caches fill
        per_run = one(i)
    assert 1000 * per_run / 2**20 > 2 * BOUND_MIB, "the bound must catch a leak of every run's arrays"
    before = rss_mib()
    for i in range(1000):
        one(i)
    growth = rss_mib() - before
    assert growth < BOUND_MIB, f"resident memory grew {growth:.1f} MiB over 1,000 runs (bound {BOUND_MIB} MiB)"
