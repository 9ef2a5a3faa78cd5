"""A built wheel runs: it ships the Hydra config, and its console scripts work from any directory.

The wheel is built from a copy of the package (the checkout stays clean), installed into a fresh
target directory, and run with only that directory on the path, from a temporary working directory:
nothing of the checkout can stand in for a file the wheel lacks.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, TINY_RUN, zipf_text


def pip(*args: str, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--no-index", "--disable-pip-version-check"],
                          cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A target directory holding the wheel's install: the w2v package and bin/ with the console scripts."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO / "w2v", source / "w2v", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(root / "dist"), str(source), cwd=root)
    wheels = list((root / "dist").glob("w2v-*.whl"))
    assert len(wheels) == 1, wheels
    pip("install", "--no-deps", "--target", str(root / "site"), str(wheels[0]), cwd=root)
    return root / "site"


def run_installed(site: Path, script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH holds the install only: not the checkout (which the test runner may have on it).
    env = dict(os.environ, PYTHONPATH=str(site), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", CUDA_VISIBLE_DEVICES="")
    command = [str(site / "bin" / script), *args] if script != "python" else [sys.executable, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_installed_wheel_trains_evaluates_and_runs_vqa_from_any_directory(installed, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "corpus.txt").write_text(zipf_text(3000), encoding="utf-8")

    probe = run_installed(installed, "python", ["-c", "import sys, w2v; print(w2v.__file__); print(sys.path)"], work)
    assert probe.returncode == 0, probe.stderr
    module_file, search_path = probe.stdout.splitlines()
    assert Path(module_file).resolve().is_relative_to(installed.resolve())
    # The venv may live inside the checkout (CI's does), so compare whole entries, not substrings.
    checkout = {REPO.resolve(), (REPO / "w2v").resolve()}
    entries = [Path(entry).resolve() for entry in ast.literal_eval(search_path) if entry]
    assert not checkout & set(entries), entries

    defaults = run_installed(installed, "w2v-train", ["--cfg", "job"], work)  # the packaged defaults compose
    assert defaults.returncode == 0, defaults.stderr[-3000:]
    composed = yaml.safe_load(defaults.stdout)
    assert (composed["model"]["name"], composed["model"]["dim"], composed["backend"]["name"]) == ("skipgram", 100, "fused")

    trained = run_installed(installed, "w2v-train", ["data=files", "data.paths=[corpus.txt]", "hydra.run.dir=run",
                                                     *TINY_RUN], work)
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = work / "run"
    assert {"vectors.bin", "tokenizer.json", "metrics.json", "config.resolved.yaml"} <= {p.name for p in run_dir.iterdir()}
    assert (work / "data" / "cache").is_dir()  # cache_dir is relative to where the command runs

    evaluated = run_installed(installed, "w2v-evaluate", [str(run_dir / "vectors.bin")], work)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert evaluated.stdout.startswith("vectors ") and " x 8" in evaluated.stdout.splitlines()[0]

    vqa = run_installed(installed, "w2v-vqa", ["hydra.run.dir=vqa", "embedding.vectors=run",  # its tokenizer and size
                                               "data.scenes.train=30", "data.scenes.test=8",
                                               "data.scenes.test_paraphrase=8", "data.scenes.image_size=16",
                                               "train.epochs=1", "train.threads=1", "model.hidden=8",
                                               "model.channels=4"], work)
    assert vqa.returncode == 0, vqa.stderr[-3000:]
    assert (work / "vqa" / "metrics.json").is_file() and (work / "vqa" / "model.pt").is_file()

    refused = run_installed(installed, "w2v-train", ["data=files", "data.paths=[corpus.txt]", "hydra.run.dir=run"], work)
    assert refused.returncode == 2 and refused.stderr.startswith("error: run dir ") and \
        refused.stderr.count("\n") == 1
