"""docs/python.md's walkthrough runs as written, and prints what the page shows: each ```python
block of the walkthrough is executed in order in one namespace (from a scratch folder that has
the repository's examples/), and where a plain ``` block follows, its text is the output."""
import contextlib
import io
import os
import re

from conftest import SOURCE_DIR

BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def walkthrough_blocks():
    text = (SOURCE_DIR / "docs" / "python.md").read_text()
    start = text.index("## Walkthrough")
    section = text[start : text.index("\n## ", start + 1)]
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(section)]


def test_walkthrough_runs_and_prints_what_the_page_shows(tmp_path):
    blocks = walkthrough_blocks()
    assert sum(lang == "python" for lang, _ in blocks) >= 6
    os.symlink(SOURCE_DIR / "examples", tmp_path / "examples")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace = {}
        for i, (lang, code) in enumerate(blocks):
            if lang != "python":
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"docs/python.md block {i}", "exec"), namespace)
            if i + 1 < len(blocks) and blocks[i + 1][0] == "":
                assert out.getvalue() == blocks[i + 1][1], f"block {i} printed:\n{out.getvalue()}"
    finally:
        os.chdir(cwd)
