"""Honest waiting (issue 16): the expected time of a hub diffusion edit is steps x the seconds
per step measured on this device, shown before the edit starts; CPU defaults fit in about 30 s.
Per-step times here are fakes written to a benchmark file in a temporary folder."""
from __future__ import annotations

import json
import re

import pytest

from engine import latency
from engine.latency import StepClock


def _clock(tmp_path, s_per_step: dict, vae_s: dict | None = None) -> StepClock:
    (tmp_path / "cpu.json").write_text(json.dumps(
        {"s_per_step": {str(k): v for k, v in s_per_step.items()},
         "vae_s": {str(k): v for k, v in (vae_s or {}).items()},
         "date": "2026-11-29", "load_avg_start": 1.0}))
    return StepClock(tmp_path)


def test_estimate_is_steps_times_the_benchmarked_step_plus_the_vae(tmp_path):
    clock = _clock(tmp_path, {256: 2.0}, {256: 1.0})
    est = clock.estimate("instruct", "cpu", 256, (256, 256), 10)
    assert est.seconds == pytest.approx(21.0) and est.s_per_step == pytest.approx(2.0)
    assert "assets/latency/cpu.json" in est.source
    # a 256 x 128 image has half the pixels; inpainting's guidance batch is 2 images, not 3
    assert clock.estimate("instruct", "cpu", 256, (256, 128), 10).seconds == pytest.approx(10.5)
    assert clock.estimate("inpaint", "cpu", 256, (256, 256), 3).seconds == pytest.approx(5.0)
    # an unmeasured side is scaled by pixel count from the nearest measured one
    assert clock.estimate("instruct", "cpu", 512, (512, 512), 1).seconds == pytest.approx(12.0)


def test_no_benchmark_and_no_run_means_no_estimate(tmp_path):
    assert StepClock(tmp_path).estimate("instruct", "cpu", 256, (256, 256), 10) is None
    assert StepClock(tmp_path).steps_within("instruct", "cuda", 512, 30.0) is None


def test_measured_runs_replace_the_benchmark(tmp_path):
    clock = _clock(tmp_path, {256: 2.0}, {256: 1.0})
    clock.record("instruct", "cpu", 256, (256, 128), steps=4, steps_s=2.0, rest_s=0.25)
    est = clock.estimate("instruct", "cpu", 256, (256, 256), 10)
    # 2.0 s for 4 steps of a half-size image = 1.0 s per step of a square one; rest 0.5 s
    assert est.seconds == pytest.approx(10.5) and est.source == "measured here over 1 run"
    assert clock.estimate("instruct", "cuda", 256, (256, 256), 10) is None  # other device


def test_cpu_default_steps_fit_the_thirty_second_budget(tmp_path):
    clock = _clock(tmp_path, {256: 2.0}, {256: 1.0})
    assert clock.steps_within("instruct", "cpu", 256, 30.0) == 14  # 14 x 2 + 1 = 29 s
    assert clock.steps_within("instruct", "cpu", 256, 30.0, bounds=(4, 10)) == 10
    (tmp_path / "slow").mkdir()
    slow = _clock(tmp_path / "slow", {256: 60.0})
    assert slow.steps_within("instruct", "cpu", 256, 30.0) == 4  # never below 4 steps


def test_edit_tab_defaults_and_expected_wait_come_from_the_clock(tmp_path, monkeypatch):
    from demos import edit
    monkeypatch.setattr(latency, "CLOCK", _clock(tmp_path, {256: 2.0}, {256: 1.0}))
    steps_update = edit.hub_controls("instruct-pix2pix")[0]
    assert steps_update["value"] == 14 and steps_update["visible"] is True
    text = edit.waiting_time("instruct-pix2pix", 10)
    assert "10 steps at 256 px" in text and "about 21 s on cpu float32" in text
    assert edit.waiting_time(edit.EMBEDDED_MODEL, 10) == ""


def test_a_cpu_hub_edit_shows_its_estimate_before_the_first_step(tmp_path, monkeypatch,
                                                                cat_image):
    """The tiny InstructPix2Pix stands in for the hub model (tests/tiny_diffusers.py); its
    per-step time is a fake 1.5 s in the benchmark file."""
    from tiny_diffusers import tiny_editor

    from demos import edit
    from engine import factory
    from engine.editing.diffusion import InstructPix2PixEditor
    from engine.editing.pipeline import EditPipeline
    clock = _clock(tmp_path, {32: 1.5}, {32: 0.5})
    monkeypatch.setattr(latency, "CLOCK", clock)
    monkeypatch.setattr("engine.editing.diffusion.CLOCK", clock)
    pipe = EditPipeline(InstructPix2PixEditor(tiny_editor(tmp_path, "instruct", work_side=32),
                                              name="instruct-pix2pix"))
    monkeypatch.setitem(factory._PIPELINES, ("edit", "instruct-pix2pix"), pipe)
    monkeypatch.setattr(factory, "hub_available", lambda: True)
    expected = pipe.estimate(cat_image.size, 3)
    assert expected is not None and expected.s_per_step < 1.5  # a 32 x 24 working size
    calls = []

    def progress(value, desc=None, unit=None):
        calls.append((value, desc))

    path = tmp_path / "cat.png"
    cat_image.save(path)
    *_, details = edit.edit_image(str(path), "make it red", "instruct-pix2pix", 3,
                                  progress=progress)
    assert [c[0] for c in calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]  # estimate, then steps
    assert re.search(rf"about {expected.seconds:.0f} s on cpu float32", calls[0][1])
    assert "benchmark assets/latency/cpu.json" in calls[0][1]
    assert f"estimated {expected.seconds:.0f} s before it started" in details
    # the run measured this device: the next estimate is its own
    assert pipe.estimate(cat_image.size, 3).source == "measured here over 1 run"


def test_the_offline_editor_gives_no_estimate(monkeypatch):
    from engine.factory import get_pipeline, sampling_defaults
    assert get_pipeline("edit").estimate((640, 480), 20) is None
    assert sampling_defaults("efficientnet_lite0") is None
