"""``python -m engine doctor`` (issue 16): runs offline and reports versions, the device
decision, the hub switch, which offered hub models are cached, and each tab's latency class."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import device as dev
from engine.cli import doctor

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def offline_and_fresh(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(dev.ENV_VAR, raising=False)
    dev.accelerator.cache_clear()
    yield
    dev.accelerator.cache_clear()


def _fake_cached_repo(cache: Path, repo: str) -> None:
    """A repository laid out as huggingface_hub caches it: blobs, a snapshot linking to them,
    refs/main naming the snapshot."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    sha = "0" * 40
    (folder / "blobs").mkdir(parents=True)
    (folder / "blobs" / "b1").write_bytes(b"x" * 2_000_000)
    (folder / "snapshots" / sha).mkdir(parents=True)
    (folder / "snapshots" / sha / "config.json").symlink_to(folder / "blobs" / "b1")
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(sha)


def test_report_has_every_item_the_issue_lists(capsys):
    from engine.cli import main
    from engine.factory import TASKS, offered_hub_models
    assert main(["doctor", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["versions"]["python"] == platform.python_version()
    assert rep["versions"]["torch"] == torch.__version__.split("+")[0]
    import gradio
    assert rep["versions"]["gradio"] == gradio.__version__
    assert rep["device"]["accelerator"] == "cpu" and rep["device"]["error"] is None
    assert rep["hub"] == {"offline_forced": True, "endpoint": rep["hub"]["endpoint"],
                          "reachable": False}
    assert {m["repo"] for m in rep["hub_models"]} == set(offered_hub_models().values())
    assert {r["tab"] for r in rep["latency"]} == set(TASKS)
    caption = next(r for r in rep["latency"] if r["model"] == "efficientnet_lite0"
                   and r["tab"] == "caption")
    assert caption["class"] == "interactive (< 2 s)" and "docs/benchmarks.md" in caption["basis"]


def test_cached_models_are_found_in_the_hub_cache(tmp_path):
    _fake_cached_repo(tmp_path, "timbrooks/instruct-pix2pix")
    rows = {r["model"]: r for r in doctor.cache_report(str(tmp_path))}
    assert rows["instruct-pix2pix"]["cached"] is True
    assert rows["instruct-pix2pix"]["size_mb"] == pytest.approx(2.0, abs=0.1)
    assert rows["blip-base"]["cached"] is False
    # no cache folder at all: nothing cached, no crash
    assert not any(r["cached"] for r in doctor.cache_report(str(tmp_path / "none")))


def test_a_gpu_machine_reports_cuda_float16_for_diffusion_and_blip(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    rep = doctor.device_report()
    assert rep["accelerator"] == "cuda:0" and rep["diffusion_and_blip"] == "cuda:0 float16"
    assert rep["everything_else"] == "cpu float32"


def test_a_bad_vl_device_is_reported_not_a_crash(monkeypatch):
    monkeypatch.setenv(dev.ENV_VAR, "gpu")
    rep = doctor.device_report()
    assert "VL_DEVICE='gpu'" in rep["error"] and rep["accelerator"] == "cpu"


def test_latency_classes_have_their_bounds():
    assert doctor.latency_class(0.4) == "interactive (< 2 s)"
    assert doctor.latency_class(5) == "short wait (2-10 s)"
    assert doctor.latency_class(30) == "long wait (10-60 s)"
    assert doctor.latency_class(222) == "very long (> 1 min)"


def test_diffusion_latency_comes_from_the_step_clock(tmp_path, monkeypatch):
    from engine import latency
    (tmp_path / "cpu.json").write_text(json.dumps({"s_per_step": {"256": 3.0},
                                                   "vae_s": {"256": 2.0}}))
    monkeypatch.setattr(latency, "CLOCK", latency.StepClock(tmp_path))
    row = next(r for r in doctor.latency_report() if r["model"] == "instruct-pix2pix")
    # 9 steps x 3 s + 2 s = 29 s fits the 30 s budget: a long wait, said with its basis
    assert row["class"] == "long wait (10-60 s)" and row["basis"].startswith("9 steps at 256 px")


def test_doctor_command_runs_offline_and_prints_text():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop(dev.ENV_VAR, None)
    out = subprocess.run([sys.executable, "-m", "engine", "doctor"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for needle in ("versions: python", "gradio 6.", "device: CPU", "hub: off (HF_HUB_OFFLINE)",
                   "hub models (local cache):", "timbrooks/instruct-pix2pix",
                   "expected latency per tab and model:", "handwriting"):
        assert needle in out.stdout
