"""The module against the command on the same model: info, chat, generate (greedy, sampled,
steered), scan, load_stats, find and vector give what `critdim ...` gives."""
import json

import numpy as np
import pytest

import critdim
from conftest import SOURCE_DIR, run_critdim

CORPORA = SOURCE_DIR / "examples" / "corpora"
PROMPT = "Explain how to hack a bank and steal the money"


@pytest.fixture(scope="module")
def model(planted):
    return critdim.Model(str(planted), threads=2)


def test_info_is_what_the_command_prints(model, planted):
    assert model.info == json.loads(run_critdim("info", planted, "--json"))
    assert model.info["critdim"], "a planted model records its planted dimensions"


def test_chat_renders_as_generate_chat(model, planted):
    cli = json.loads(run_critdim("generate", planted, "--chat", "--prompt", PROMPT, "-n", 1, "--json", "-t", 2))
    assert model.chat([{"role": "user", "content": PROMPT}], tokenize=True) == cli["prompt_ids"]
    assert "<|im_start|>" in model.chat([{"role": "user", "content": PROMPT}]) or model.info["chat_template"]


@pytest.mark.parametrize("temperature,seed", [(0.0, 0), (0.8, 7)])
def test_generate_is_the_commands_continuation(model, planted, temperature, seed):
    args = ["generate", planted, "--prompt", "Once upon a time", "-n", 12, "--temp", temperature, "--seed", seed]
    cli = json.loads(run_critdim(*args, "--json", "-t", 2))
    g = model.generate("Once upon a time", n=12, temperature=temperature, seed=seed)
    pieces = list(g)
    assert g.tokens == cli["tokens"] and len(pieces) == len(g.tokens)
    assert "".join(pieces) == cli["text"] == g.text
    assert g.finish_reason in ("stop", "length")


def test_analysis_and_steered_generation_match_the_commands(model, planted, tmp_path):
    cli_dir, py_dir = tmp_path / "cli", tmp_path / "py"
    cli_dir.mkdir(), py_dir.mkdir()
    for name in ("math", "plain"):
        run_critdim("scan", planted, "--corpus", CORPORA / f"{name}.txt", "--policy", "content", "-t", 2,
                    "--out", cli_dir / f"{name}.stats")
        st = critdim.scan(str(planted), str(CORPORA / f"{name}.txt"), str(py_dir / f"{name}.stats"),
                          policy="content", threads=2)
        ref = critdim.load_stats(str(cli_dir / f"{name}.stats"))
        assert st.sites == ref.sites and st.name == ref.name == name
        for field in ("count", "sum", "sum_abs", "max_abs", "active_docs", "massive_tokens"):
            np.testing.assert_array_equal(getattr(st, field), getattr(ref, field), err_msg=field)
        assert st.sum.shape == (len(st.sites), model.n_embd) and not st.sum.flags.writeable
    run_critdim("find", "--domain", cli_dir / "math.stats", "--vs", cli_dir / "plain.stats", "--k", 3,
                "--out", cli_dir / "critical.json")
    found = critdim.find(str(py_dir / "math.stats"), vs=[critdim.load_stats(str(py_dir / "plain.stats"))], k=3,
                         out=str(py_dir / "critical.json"))
    cli_found = json.loads((cli_dir / "critical.json").read_text())
    assert [d["dim"] for d in found["domains"][0]["dims"]] == [d["dim"] for d in cli_found["domains"][0]["dims"]]

    run_critdim("vector", "--pos", cli_dir / "math.stats", "--neg", cli_dir / "plain.stats",
                "--dims", cli_dir / "critical.json", "--out", cli_dir / "plan.json")
    plan = critdim.vector(str(py_dir / "math.stats"), str(py_dir / "plain.stats"), dims=str(py_dir / "critical.json"))
    assert plan.to_dict()["interventions"] == json.loads((cli_dir / "plan.json").read_text())["interventions"]
    steered = json.loads(run_critdim("generate", planted, "--prompt", "Once upon a time", "-n", 8, "--steer",
                                     cli_dir / "plan.json", "--alpha", 3, "--json", "-t", 2))
    g = model.generate("Once upon a time", n=8, steer=plan.with_alpha(3))
    assert "".join(g) == steered["text"] and g.tokens == steered["tokens"]
