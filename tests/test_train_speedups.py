"""The training loop's two shortcuts change no number: SGD applied inside backward equals
``optimizer.step()`` bit for bit, and the Evaluator's reuse of an answer for unchanged weights
never serves a stale one."""

from __future__ import annotations

import copy

import torch
from conftest import tiny_config

import engine.train as train
from engine.config import resolve, validate
from engine.data import build_benchmark
from engine.models import build_model
from engine.runner import run
from engine.strategies import Context, make_strategy
from engine.train import Evaluator, sgd_in_backward

CPU = torch.device("cpu")


def _setup(**overrides):
    cfg = resolve(validate(tiny_config(**overrides)), device="cpu")
    bench = build_benchmark(cfg.data, cfg.scenario, CPU)
    torch.manual_seed(0)
    model = build_model(cfg.model, bench.input_shape, bench.n_outputs)
    strategy = make_strategy(cfg.strategy, Context(bench, cfg.scenario, cfg.train, CPU, 0))
    return cfg, bench, model, strategy


def test_sgd_inside_backward_equals_optimizer_step_bit_for_bit():
    cfg, bench, model, strategy = _setup(train__optimizer="sgd", train__lr=0.05)
    twin = copy.deepcopy(model)
    opt_a = torch.optim.SGD(model.parameters(), lr=0.05, foreach=True)
    opt_b = torch.optim.SGD(twin.parameters(), lr=0.05, foreach=True)
    hooks = sgd_in_backward(opt_b, strategy, CPU)
    assert len(hooks) == len(list(twin.parameters()))
    x, y = bench.x_train[:64], bench.y_train[:64]
    for step in range(5):
        for opt in (opt_a, opt_b):  # a warm-up schedule changes lr between steps
            opt.param_groups[0]["lr"] = 0.05 * (step + 1) / 5
        opt_a.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt_a.step()
        opt_b.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(twin(x), y).backward()  # the step happens in here
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    for h in hooks:
        h.remove()


def test_sgd_inside_backward_only_where_nothing_needs_the_whole_gradient():
    _, _, model, naive = _setup(train__optimizer="sgd")
    params = list(model.parameters())
    assert sgd_in_backward(torch.optim.SGD(params, lr=0.1, momentum=0.9), naive, CPU) == []
    assert sgd_in_backward(torch.optim.SGD(params, lr=0.1, weight_decay=1e-4), naive, CPU) == []
    assert sgd_in_backward(torch.optim.Adam(params, lr=0.1), naive, CPU) == []
    assert sgd_in_backward(torch.optim.SGD(params, lr=0.1), naive, torch.device("cuda")) == []
    # EWC adds its penalty's gradient in before_step: it needs the whole gradient first.
    _, _, _, ewc = _setup(train__optimizer="sgd", strategy={"name": "ewc"})
    assert sgd_in_backward(torch.optim.SGD(params, lr=0.1), ewc, CPU) == []


def test_a_whole_run_gives_the_same_R_with_and_without_the_shortcut(monkeypatch):
    raw = tiny_config(train__optimizer="sgd", train__lr=0.05)
    with_hooks = run(raw, store=None, use_cache=False)
    monkeypatch.setattr(train, "sgd_in_backward", lambda *a: [])
    without = run(raw, store=None, use_cache=False)
    assert with_hooks.R == without.R and with_hooks.curves == without.curves


def _counting(evaluator: Evaluator) -> list[int]:
    calls = [0]
    inner = evaluator._evaluate

    def counted(model, strategy):
        calls[0] += 1
        return inner(model, strategy)

    evaluator._evaluate = counted
    return calls


def test_evaluator_reuses_an_answer_only_while_the_weights_are_unchanged():
    _, bench, model, strategy = _setup()
    evaluate = Evaluator(bench)
    calls = _counting(evaluate)
    acc, loss = evaluate(model, strategy)
    again, _ = evaluate(model, strategy)
    assert calls[0] == 1 and torch.equal(acc, again)
    again[0] = -1.0  # a caller editing its answer does not change the next one
    assert evaluate(model, strategy)[0][0] == acc[0] and calls[0] == 1
    with torch.no_grad():  # an in-place update (what an optimizer step does)
        next(model.parameters()).add_(0.5)
    evaluate(model, strategy)
    assert calls[0] == 2
    model.load_state_dict(copy.deepcopy(model).state_dict())  # copy_ into the same tensors
    evaluate(model, strategy)
    assert calls[0] == 3
    # The fresh answer equals one computed without any reuse.
    fresh = Evaluator(bench)._evaluate(model, strategy)
    assert torch.equal(evaluate(model, strategy)[0], fresh[0]) and calls[0] == 3


def test_evaluator_never_reuses_for_a_strategy_that_predicts_with_its_own_state():
    _, bench, model, avg = _setup(strategy={"name": "model-avg"})
    evaluate = Evaluator(bench)
    calls = _counting(evaluate)
    evaluate(model, avg)
    evaluate(model, avg)
    assert calls[0] == 2
