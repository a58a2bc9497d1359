"""The Python callback hook: zeroing one dimension at every layer equals the C++ `zero` plan;
what it writes at any site is the stream; a callback that raises surfaces as that Python
exception and the model keeps working; critdim's errors arrive as critdim.Error."""
import numpy as np
import pytest

import critdim

DIM = 7


@pytest.fixture(scope="module")
def model(shared):
    return critdim.Model(str(shared / "golden" / "models" / "llama-deep-f32.gguf"), threads=2)


@pytest.fixture(scope="module")
def prompt(shared):
    import json

    manifest = json.loads((shared / "golden" / "MANIFEST.json").read_text())
    return next(c for c in manifest["cases"] if c["id"] == "llama-deep-f32")["prompt_ids"]


def zero_plan(dim):
    return critdim.Plan(
        {
            "format": "critdim-steering-plan",
            "version": 1,
            "interventions": [{"op": "zero", "point": "resid_post", "layers": "all", "dims": [dim]}],
        }
    )


def test_callback_zeroing_a_dimension_equals_the_zero_plan(model, prompt):
    seen = []

    def zero(name, layer, x):
        seen.append((name, layer, x.shape))
        x[:, DIM] = 0.0

    plan_logits, plan_cache = model.run(prompt, hooks=["resid_post.*"], steer=zero_plan(DIM))
    hook_logits, hook_cache = model.run(prompt, hooks=["resid_post.*"], hook=zero, hook_at="resid_post.*")
    clean_logits, _ = model.run(prompt)
    T = len(prompt)
    assert seen == [(f"resid_post.{l}", l, (T, model.n_embd)) for l in range(model.n_layer)]
    assert not np.array_equal(plan_logits, clean_logits), "zeroing the dimension should change the logits"
    np.testing.assert_array_equal(hook_logits, plan_logits)
    np.testing.assert_array_equal(hook_cache["resid_post"], plan_cache["resid_post"])
    assert (hook_cache["resid_post"][:, :, DIM] == 0).all(), "captures see the stream after the callback"


def test_callback_at_another_point_changes_what_follows(model, prompt):
    def double_attention(name, layer, x):
        x *= 2.0

    _, before = model.run(prompt, hooks=["attn_out.1", "resid_post.1"])
    _, after = model.run(prompt, hooks=["attn_out.1"], hook=double_attention, hook_at=["attn_out.1"])
    np.testing.assert_allclose(after["attn_out.1"], 2 * before["attn_out.1"], rtol=1e-6)


def test_a_raising_callback_surfaces_and_leaves_the_model_usable(model, prompt):
    clean, _ = model.run(prompt, hooks=["resid_post.*"])

    class Boom(Exception):
        pass

    def explode(name, layer, x):
        if layer == 2:
            raise Boom(f"stop at {name}")

    with pytest.raises(Boom, match="stop at resid_post.2"):
        model.run(prompt, hooks=["resid_post.*"], hook=explode)
    again, cache = model.run(prompt, hooks=["resid_post.*"])
    np.testing.assert_array_equal(again, clean)
    # and generation, which has its own context, works too
    assert len(list(model.generate(prompt, n=4, ignore_eos=True))) == 4


def test_critdim_errors_are_python_exceptions(model, prompt, tmp_path):
    with pytest.raises(critdim.Error) as e:
        model.run(prompt, hooks=["resid_post.99"])
    assert "resid_post.99" in str(e.value) and e.value.kind == "mismatch" and e.value.exit_code == 4
    with pytest.raises(critdim.Error) as e:
        model.run(prompt, steer=zero_plan(model.n_embd + 5))
    assert e.value.kind == "mismatch"
    bad = tmp_path / "plan.json"
    bad.write_text('{"format": "critdim-steering-plan", "version": 1, "interventions": [{"op": "multiply"}]}')
    with pytest.raises(critdim.Error, match=r"plan.json: interventions\[0\].op: unknown operation 'multiply'") as e:
        critdim.Plan(str(bad))
    assert e.value.exit_code == 3
    with pytest.raises(critdim.Error, match="missing.gguf"):
        critdim.Model(str(tmp_path / "missing.gguf"))
    np.testing.assert_array_equal(model.run(prompt)[0], model.run(prompt)[0])


def test_plan_from_vectors_equals_the_plan_file(model, prompt):
    rng = np.random.default_rng(0)
    v = rng.standard_normal((2, 3)).astype(np.float32)
    built = critdim.Plan.from_vectors(v, layers=[1, 3], dims=[0, 5, 9], alpha=0.5)
    written = critdim.Plan(
        {
            "format": "critdim-steering-plan",
            "version": 1,
            "interventions": [
                {"op": "add", "layers": [1, 3], "dims": [0, 5, 9], "values": v.tolist(), "alpha": 0.5}
            ],
        }
    )
    np.testing.assert_array_equal(model.run(prompt, steer=built)[0], model.run(prompt, steer=written)[0])
    by_dict = critdim.Plan.from_vectors({1: v[0], 3: v[1]}, dims=[0, 5, 9], alpha=0.5)
    np.testing.assert_array_equal(model.run(prompt, steer=built)[0], model.run(prompt, steer=by_dict)[0])
    assert critdim.Plan(built.to_json()).to_dict() == built.to_dict()
