"""Shared pieces of the Python tests: where ../shared and the critdim binary are, and the
golden manifests. ctest runs these with PYTHONPATH set to the build's module folder.

The tests never skip: without ../shared (or CRITDIM_SHARED) they fail, saying what is missing.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

SOURCE_DIR = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    d = Path(os.environ.get("CRITDIM_SHARED") or SOURCE_DIR.parent / "shared")
    if not (d / "golden" / "MANIFEST.json").is_file():
        raise RuntimeError(
            f"the shared test data is missing: expected '{d}/golden/MANIFEST.json' (set CRITDIM_SHARED to its folder)"
        )
    return d.resolve()


def golden_cases(with_control_vector: bool):
    """(folder, case) of golden/ and golden/qwen3/, with or without a control vector."""
    cases = []
    for sub in ("golden", "golden/qwen3"):
        folder = shared_dir() / sub
        manifest = json.loads((folder / "MANIFEST.json").read_text())
        for c in manifest["cases"]:
            if (c.get("control_vector") is not None) == with_control_vector:
                cases.append(pytest.param(folder, c, id=c["id"]))
    return cases


def assert_close(got, golden, atol, rtol, what):
    """The manifests' rule: |a - b| <= atol + rtol |b| elementwise, b the golden value."""
    got = np.asarray(got, dtype=np.float64)
    golden = np.asarray(golden, dtype=np.float64)
    assert got.shape == golden.shape, f"{what}: shape {got.shape}, golden {golden.shape}"
    excess = np.abs(got - golden) - (atol + rtol * np.abs(golden))
    worst = int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess)))
    assert not np.isnan(excess).any() and excess.max() <= 0, (
        f"{what}: element {np.unravel_index(worst, got.shape)} differs by {abs(got.flat[worst] - golden.flat[worst]):.3g}"
        f" (atol {atol}, rtol {rtol}); max |diff| {np.nanmax(np.abs(got - golden)):.3g}"
    )


def critdim_binary() -> str:
    path = os.environ.get("CRITDIM_BINARY") or str(SOURCE_DIR / "build" / "src" / "cli" / "critdim")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"the critdim command is missing: '{path}' (set CRITDIM_BINARY)")
    return path


def run_critdim(*args) -> str:
    """Runs the command and returns its stdout; a failure shows its stderr."""
    r = subprocess.run([critdim_binary(), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"critdim {' '.join(map(str, args))} exited {r.returncode}: {r.stderr}"
    return r.stdout


@pytest.fixture(scope="session")
def shared():
    return shared_dir()


@pytest.fixture(scope="session")
def planted(tmp_path_factory):
    """The README's planted model (small config, known critical dimensions), made once."""
    import critdim

    path = tmp_path_factory.mktemp("planted") / "planted.gguf"
    critdim.synth(str(path), config="small", plant="default", seed=1, type="q8_0", threads=2)
    return path
