"""The engine on a CUDA GPU: the same weights predict the same as on the CPU, bf16 autocast
trains, the conv nets train, and the app's job manager runs on the GPU.

Skipped without CUDA. ``FORGET_TEST_DEVICE=cpu`` runs them on the CPU instead (the CPU dry run of
bench/gpu_check.sh does, so these code paths are exercised before a GPU is lent)."""

from __future__ import annotations

import math
import os

import pytest
import torch
from conftest import tiny_config

from engine.config import resolve, validate
from engine.jobs import JobManager
from engine.runner import run

DEVICE = os.environ.get("FORGET_TEST_DEVICE", "cuda")

pytestmark = pytest.mark.skipif(
    torch.device(DEVICE).type == "cuda" and not torch.cuda.is_available(),
    reason="needs CUDA (FORGET_TEST_DEVICE=cpu runs these on the CPU)",
)


def on(device: str, **overrides) -> dict:
    return tiny_config(train__device=device, **overrides)


def test_the_same_weights_predict_the_same_on_the_device():
    cpu = run(on("cpu"), use_cache=False)
    dev = run(on(DEVICE), use_cache=False)
    assert dev.device == torch.device(DEVICE).type
    # Same seed, same initial weights (built on the CPU, then moved): before any training the
    # two devices must agree up to an argmax tie on a test image or two (~72 a task).
    assert dev.baseline == pytest.approx(cpu.baseline, abs=0.03)
    assert len(dev.R) == len(cpu.R) == 5
    assert all(0.0 <= a <= 1.0 for row in dev.R for a in row)
    # Minibatch orders come from each device's own generator, so training differs; class-IL
    # fine-tuning still forgets everything but the last task on both (ACC near 1/5).
    assert dev.metrics["acc"] == pytest.approx(cpu.metrics["acc"], abs=0.05)


def test_bf16_autocast_learns_every_task_as_well_as_float32():
    fp32 = run(on(DEVICE, train__epochs=10), use_cache=False)
    bf16 = run(on(DEVICE, train__epochs=10, train__amp=True), use_cache=False)
    assert bf16.status == "done"
    assert bf16.config["train"]["amp"] is True
    assert all(math.isfinite(loss) for loss in bf16.curves["loss"])
    # Each task's accuracy right after training it (float32 reaches 0.82-1.0 on the CPU).
    learned = [bf16.R[t][t] for t in range(5)]
    assert min(learned) > 0.75, learned
    assert sum(learned) / 5 >= sum(fp32.R[t][t] for t in range(5)) / 5 - 0.05


@pytest.mark.parametrize("arch", ["vgg19", "resnet18"])
def test_conv_nets_train_with_bf16_on_the_device(arch):
    cfg = {
        "scenario": "class",
        "data": {
            "benchmark": "synthetic",
            "synthetic_n": 300,
            "synthetic_shape": "3x32x32",
        },
        "model": {"arch": arch, "width_factor": 0.25},
        "train": {
            "epochs": 1,
            "batch_size": 32,
            "optimizer": "sgd",
            "lr": 0.01,
            "evals_per_task": 1,
            "device": DEVICE,
            "amp": True,
        },
        "strategy": {"name": "naive"},
    }
    result = run(cfg, use_cache=False)
    assert result.status == "done", result.message
    assert result.device == torch.device(DEVICE).type
    assert len(result.R) == 5 and all(len(row) == 5 for row in result.R)
    assert all(0.0 <= a <= 1.0 for row in result.R for a in row)


def test_a_job_from_the_app_runs_on_the_device(tmp_path):
    manager = JobManager(workers=1, store_dir=tmp_path / "store")
    try:
        job = manager.submit(on(DEVICE))
        assert job.wait(120), "the job did not finish in 120 s"
        assert job.state == "done", job.message
        assert job.result["device"] == torch.device(DEVICE).type
        assert len(job.snapshot()["R"]) == 5
    finally:
        manager.shutdown(wait=True)


@pytest.mark.skipif(DEVICE != "cuda", reason="about CUDA itself")
def test_auto_picks_the_gpu():
    assert resolve(validate(on("auto"))).train.device == "cuda"
