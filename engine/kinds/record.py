"""A continual run with every layer's activations recorded after each task, and what they show:
rank by layer over tasks, each layer's CKA drift, after task 1 versus after the last task, and
linear probes over tasks (thesis 3.3, 5.3.1, 5.14).

The spec is a run's config plus the recording settings. The run trains through the same phase
loop as any run (engine.kinds.run); after each task the activations of every probe point on a
fixed set of ``n`` test images (the same images for every run of a benchmark) are kept — in
memory for the views, and in the store as this result's extras ``acts/<t>`` for
``python -m engine analyze {rank,cka,probes} --key KEY``.
"""

from __future__ import annotations

import math

from pydantic import Field

from engine.analysis.activations import RECORD_SEED, load_recording, record_after_task
from engine.analysis.cka import cka_matrix
from engine.analysis.recorded import cka_view, probes_view, rank_view
from engine.config import ExperimentConfig, resolve
from engine.estimate import FLOAT, input_shape, model_profile, n_outputs, training_cost
from engine.kinds import run
from engine.kinds.base import ComputeContext, Cost
from engine.session import Session

NAME = "record"
TITLE = "Recorded run"
SUMMARY = "A run with every layer recorded after each task: rank, CKA drift and probes over tasks."


class Spec(ExperimentConfig):
    n: int = Field(
        256,
        ge=16,
        le=4096,
        description="Test images whose activations are recorded after each task",
    )
    probe_epochs: int = Field(30, ge=1, le=1000, description="Epochs of the probes over tasks")
    probe_batch: int = Field(512, ge=1, le=8192, description="Minibatch of the probes over tasks")
    cka_method: str = Field(
        "linear", pattern="^(linear|minibatch)$", description="CKA estimator: linear or minibatch"
    )

    def run_config(self) -> ExperimentConfig:
        return ExperimentConfig.model_validate(
            self.model_dump(include=set(ExperimentConfig.model_fields))
        )


def canonical(spec: Spec) -> Spec:
    cfg = resolve(spec.run_config())
    return Spec.model_validate({**spec.model_dump(), **cfg.model_dump()})


def estimate(spec: Spec) -> Cost:
    cfg = spec.run_config()
    train = training_cost(cfg)
    profile = model_profile(cfg.model, input_shape(cfg.data), n_outputs(cfg))
    fwd, act = profile.macs, profile.activations
    tasks = cfg.data.n_tasks
    half = spec.n // 2
    probes = 3 * spec.probe_epochs * half * act * n_outputs(cfg) * tasks
    views = tasks * (spec.n * fwd + spec.n * act * act / 8)
    held = tasks * spec.n * act * 2  # float16 recordings, one set per task
    return Cost(
        params=train.params,
        steps=train.steps + tasks * spec.probe_epochs * math.ceil(half / spec.probe_batch),
        macs=train.macs + probes + views,
        peak_bytes=int(train.peak_bytes + held + spec.n * act * FLOAT),
    )


def compute(spec: Spec, ctx: ComputeContext) -> dict:
    recs: list[dict] = []

    def record(s: Session, phase: int) -> None:
        blob = record_after_task(s.model, s.bench, spec.n, RECORD_SEED)
        ctx.put_extra(f"acts/{phase}", blob)
        recs.append(load_recording(blob))

    body = run.compute(spec.run_config(), ctx, after_phase=record)
    if body["status"] != "done" or not recs:
        return body
    if len(recs) < len(body["R"]):  # resumed from a checkpoint: earlier tasks are in the store
        recs = [load_recording(ctx.load_extra(f"acts/{t}")) for t in range(len(body["R"]))]
    ctx.set_stage("views")
    return {
        **body,
        "layers": recs[0]["points"],
        "recorded": spec.n,
        "rank": rank_view(recs)["rank"],
        "cka": cka_view(recs, method=spec.cka_method),
        "first_vs_last": cka_matrix(recs[0]["acts"], recs[-1]["acts"], method=spec.cka_method),
        "probes": probes_view(
            recs, epochs=spec.probe_epochs, batch_size=spec.probe_batch, seed=spec.train.seed
        ),
    }
