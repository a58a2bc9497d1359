"""critdim.Tokenizer gives llama.cpp's ids for every .inp/.out case of every vocabulary in
../shared/vocab (no BOS, special tokens not parsed: vocab/README.md), the compressed ones
included; Model.tokenize is the same tokenizer."""
import subprocess

import pytest

import critdim
from conftest import shared_dir

SEPARATOR = "\n__ggml_vocab_test__\n"

# (vocabulary file, cases stem): ISSUE-NOTES.md's testable vocabularies.
SHARED = ["llama-spm", "phi-3", "gpt-2", "llama-bpe", "qwen2", "bert-bge"]
MORE = ["deepseek-coder", "falcon", "mpt", "refact", "starcoder"]


def read_cases(stem):
    """As llama.cpp's test-tokenizer-0: split on the separator, one .out line per case, dedup by text."""
    inp = (stem.parent / (stem.name + ".inp")).read_text(encoding="utf-8")
    out = (stem.parent / (stem.name + ".out")).read_text(encoding="utf-8").removesuffix("\n").split("\n")
    texts = inp.split(SEPARATOR)
    if texts and texts[-1] == "":
        texts.pop()
    assert len(out) == len(texts), f"{stem}: {len(out)} lines for {len(texts)} cases"
    return {t: [int(x) for x in line.split()] for t, line in zip(texts, out)}


@pytest.fixture(scope="module")
def more_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("vocab-more")
    subprocess.run(["tar", "-xJf", str(shared_dir() / "vocab" / "ggml-vocab-more.tar.xz"), "-C", str(d)], check=True)
    return d


def check(gguf, stem):
    tok = critdim.Tokenizer(str(gguf))
    cases = read_cases(stem)
    assert cases
    wrong = [(t, ids, tok.tokenize(t, bos=False, special=False)) for t, ids in cases.items()]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, f"{gguf.name}: {len(wrong)} of {len(cases)} differ, first {wrong[0]!r}"


@pytest.mark.parametrize("name", SHARED)
def test_shared_vocabulary(name):
    v = shared_dir() / "vocab" / f"ggml-vocab-{name}.gguf"
    check(v, v)


def test_deepseek_r1_qwen_cases_on_qwen2():
    v = shared_dir() / "vocab"
    check(v / "ggml-vocab-qwen2.gguf", v / "ggml-vocab-deepseek-r1-qwen.gguf")


@pytest.mark.parametrize("name", MORE)
def test_compressed_vocabulary(name, more_dir):
    check(more_dir / f"ggml-vocab-{name}.gguf", shared_dir() / "vocab" / f"ggml-vocab-{name}.gguf")


def test_model_tokenize_is_the_vocabulary(shared):
    m = critdim.Model(str(shared / "golden" / "models" / "stories260K-f32.gguf"))
    ids = m.tokenize("Once upon a time")
    assert ids[0] == m.tokenizer.bos_id and m.tokenizer.adds_bos
    assert m.tokenize("Once upon a time", bos=False) == ids[1:]
    assert m.decode(ids) == "Once upon a time"


def test_special_tokens_only_when_asked():
    tok = critdim.Tokenizer(str(shared_dir() / "vocab" / "ggml-vocab-qwen2.gguf"))
    im_start = tok.find_token("<|im_start|>")
    assert tok.tokenize("<|im_start|>", bos=False, special=True) == [im_start]
    assert im_start not in tok.tokenize("<|im_start|>", bos=False, special=False)
