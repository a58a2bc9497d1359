"""From Python, on every golden case: Model.run's logits and every layer's resid_post equal
llama.cpp's (qwen3: the float64 reference's) within the case's manifest tolerance, and the
imported golden control vectors give llama.cpp's steered logits and residual stream."""
import numpy as np
import pytest

import critdim
from conftest import assert_close, golden_cases


def check_case(folder, case, steer=None):
    m = critdim.Model(str(folder / case["model"]), threads=2)
    assert (m.n_vocab, m.n_embd, m.n_layer) == (case["n_vocab"], case["n_embd"], case["n_layer"])
    logits, cache = m.run(case["prompt_ids"], hooks=["resid_post.*"], steer=steer)
    tol = case["tolerance"]
    golden_logits = np.load(folder / case["files"]["logits"]["path"])
    assert_close(logits, golden_logits, tol["logits"]["atol"], tol["logits"]["rtol"], "logits")
    golden_resid = np.load(folder / case["files"]["resid_post"]["path"])
    assert cache["resid_post"].shape == golden_resid.shape
    rt = tol["resid_post"]
    for layer in range(m.n_layer):
        atol = rt["atol_per_layer"][layer] if "atol_per_layer" in rt else rt["atol"]
        assert_close(cache[f"resid_post.{layer}"], golden_resid[layer], atol, rt["rtol"], f"resid_post.{layer}")


@pytest.mark.parametrize("folder,case", golden_cases(with_control_vector=False))
def test_run_matches_golden(folder, case):
    check_case(folder, case)


@pytest.mark.parametrize("folder,case", golden_cases(with_control_vector=True))
def test_imported_control_vector_matches_llama_cpp(folder, case):
    cv = case["control_vector"]
    plan = critdim.Plan.from_cvector(str(folder / cv["file"]), scale=cv["scale"], layer_range=cv["layer_range"])
    check_case(folder, case, steer=plan)


def test_every_case_is_here():
    # 14 + stories260K without a control vector, qwen3's, and the 12 cvec-* cases.
    assert len(golden_cases(False)) >= 15
    assert len(golden_cases(True)) == 12
