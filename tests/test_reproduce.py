"""Reproduce: the registry of published tables and figures, their protocols as sweeps, the
comparison of published against measured numbers, and `python -m engine reproduce`."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from engine import cli, reproduce
from engine.config import ConfigError
from engine.reproduce import blog_strategies, splitmnist_protocol, vandeven_2018, vandeven_2019
from engine.reproduce.base import TINY_ENV, Measured, Published, seed_list
from engine.reproduce.compare import comparison
from engine.sweep import Entry, SweepResult, expand

ENTRIES = (
    "vandeven-2019",
    "vandeven-2018",
    "thesis-temperature",
    "thesis-tunnel",
    "blog-strategies",
)


def run_cli(monkeypatch, *argv: str) -> int:
    """`python -m engine …` in this process, with the reproduce verb registered."""
    if "engine.commands.reproduce" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, "engine.commands.reproduce"))
    return cli.main(list(argv))


# ---- the registry and the protocols -------------------------------------------------------------


def test_the_registry_lists_every_entry_with_its_parts():
    assert reproduce.names() == ENTRIES
    for name in ENTRIES:
        module = reproduce.entry(name)
        assert module.NAME == name and module.TITLE and module.CITATION
        assert module.PROTOCOL and module.DEVIATIONS
        # Every published number names a source the entry describes.
        assert module.PUBLISHED and {p.source for p in module.PUBLISHED} <= set(module.SOURCES)
        for p in module.PUBLISHED:
            assert p.value is not None or p.rank is not None, p


def test_an_unknown_entry_is_one_line_naming_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"'nope' is not an entry; allowed: vandeven-2019"):
        reproduce.entry("nope")
    with pytest.raises(ConfigError, match=r"--variant: 'cifar' is not a variant"):
        reproduce.specs(reproduce.entry("vandeven-2019"), variant="cifar")


@pytest.mark.parametrize("name", ENTRIES)
def test_every_variant_of_every_entry_expands_into_valid_configs(name):
    module = reproduce.entry(name)
    for variant in reproduce.variants(module):
        specs = reproduce.specs(module, variant)
        assert all("kind" in s for s in specs)
        configs = [c for s in specs for c in expand(s)]
        assert len(configs) == reproduce.n_configs(module, variant)


def test_van_de_ven_protocol_is_the_papers_as_far_as_the_engine_allows():
    (spec,) = reproduce.specs(reproduce.entry("vandeven-2019"))
    configs = expand(spec)
    assert len(configs) == 7 * 3 * 3  # methods × scenarios × seeds
    by = {(c["scenario"], c["strategy"]["name"], c["train"]["seed"]): c for c in configs}
    naive = by[("class", "naive", 2)]
    assert naive["data"] == {"benchmark": "split-mnist5k", "order_seed": None}
    assert naive["model"] == {"arch": "mlp", "depth": 2, "width": 400}
    assert naive["train"] == {
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 128,
        "epochs": 100,
        "seed": 2,
    }
    # The code's per-scenario strengths on the raw Fisher (param_values.py).
    assert [by[(s, "ewc", 0)]["strategy"]["lam"] for s in ("task", "domain", "class")] == [
        1e5,
        1e10,
        1e9,
    ]
    assert by[("domain", "ewc", 0)]["strategy"]["fisher_norm"] == "none"
    assert [by[(s, "si", 0)]["strategy"]["c"] for s in ("task", "domain", "class")] == [
        10.0,
        50_000.0,
        5_000.0,
    ]
    replay = by[("task", "replay", 1)]["strategy"]
    assert replay["buffer_size"] == 1000 and replay["replay_fraction"] == 0.5
    # Iterations per task as the protocol text states: 100 epochs of ceil(~800 / 128) = 7 batches.
    assert "100 epochs × 7 batches = 700" in vandeven_2019.PROTOCOL
    # The 2018 and 2019 entries run the very same configs (one run fills both).
    assert reproduce.specs(reproduce.entry("vandeven-2018")) == [spec]


def test_full_mnist_variant_runs_the_papers_iterations_on_real_mnist():
    (spec,) = reproduce.specs(reproduce.entry("vandeven-2019"), variant="full")
    c = expand(spec)[0]
    assert c["data"]["benchmark"] == "split-mnist" and c["train"]["epochs"] == 21
    # ~12,000 images a task / 128 = 94 batches an epoch: 21 epochs ≈ the paper's 2,000 iterations
    assert abs(21 * 94 - 2000) < 50


def test_seeds_option_takes_the_first_seeds_and_refuses_zero():
    assert seed_list([0, 1, 2], None) == [0, 1, 2]
    assert seed_list([0, 1, 2], 1) == [0]
    assert seed_list([0, 1, 2], 5) == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="--seeds: expected a positive number"):
        seed_list([0, 1, 2], 0)
    assert reproduce.n_configs(reproduce.entry("vandeven-2019"), seeds=1) == 21


# ---- the comparison ------------------------------------------------------------------------------


def test_compare_gives_mean_std_difference_and_spearman_by_hand():
    published = [
        Published("g", "a", "m", 90.0, "s", sem=1.0),
        Published("g", "b", "m", 80.0, "s"),
        Published("g", "c", "m", 70.0, "s"),
        Published("g", "d", "m", 60.0, "s"),  # published, never measured
    ]
    measured = [
        Measured("g", "a", "m", 92.0),
        Measured("g", "a", "m", 94.0),
        Measured("g", "b", "m", 70.0),
        Measured("g", "c", "m", 75.0),
        Measured("g", "e", "m", 50.0),  # measured, never published
    ]
    out = comparison(published, measured)
    rows = {r["item"]: r for r in out.rows}
    assert [r["item"] for r in out.rows] == ["a", "b", "c", "d", "e"]
    assert rows["a"]["n"] == 2 and rows["a"]["measured_mean"] == pytest.approx(93.0)
    assert rows["a"]["measured_std"] == pytest.approx(math.sqrt(2.0))  # sample std of 92, 94
    assert rows["a"]["difference"] == pytest.approx(3.0) and rows["a"]["published_sem"] == 1.0
    assert rows["b"]["measured_std"] is None and rows["b"]["difference"] == pytest.approx(-10.0)
    assert rows["d"]["measured_mean"] is None and rows["d"]["difference"] is None
    assert rows["e"]["published"] is None and rows["e"]["difference"] is None
    # Ordering over a, b, c: published a > b > c, measured a > c > b: d² = 0, 1, 1 → ρ = 1 − 6·2/24
    (agreement,) = out.agreement
    assert agreement["items"] == ["a", "b", "c"] and agreement["n"] == 3
    assert agreement["rho"] == pytest.approx(0.5) and agreement["verdict"] == "partly agrees"


def test_compare_orders_rank_only_publications_and_says_when_it_cannot():
    ranks = [Published("g", x, "m", None, "s", rank=r) for x, r in (("a", 1), ("b", 2), ("c", 3))]
    agrees = comparison(
        ranks,
        [Measured("g", "a", "m", 3.0), Measured("g", "b", "m", 2.0), Measured("g", "c", "m", 1.0)],
    )
    assert agrees.agreement[0]["rho"] == pytest.approx(1.0)
    assert agrees.agreement[0]["verdict"] == "agrees"
    reversed_ = comparison(
        ranks,
        [Measured("g", "a", "m", 1.0), Measured("g", "b", "m", 2.0), Measured("g", "c", "m", 3.0)],
    )
    assert reversed_.agreement[0]["rho"] == pytest.approx(-1.0)
    assert reversed_.agreement[0]["verdict"] == "disagrees"
    ties = comparison(ranks, [Measured("g", x, "m", 5.0) for x in "abc"])
    assert ties.agreement[0]["rho"] is None
    assert ties.agreement[0]["verdict"] == "the measured values tie"
    two = comparison(ranks[:2], [Measured("g", "a", "m", 1.0), Measured("g", "b", "m", 2.0)])
    assert two.agreement[0]["rho"] is None and "fewer than 3" in two.agreement[0]["verdict"]


def _fake_runs(accs: dict[tuple[str, str], list[float]]) -> list[SweepResult]:
    """Stored continual runs with the given ACC per (scenario, strategy), one per seed."""
    entries = []
    for (scenario, strategy), values in accs.items():
        for seed, acc in enumerate(values):
            config = {
                "scenario": scenario,
                "strategy": {"name": strategy},
                "train": {"seed": seed},
            }
            entries.append(
                Entry(
                    index=len(entries),
                    key=f"k{len(entries)}",
                    config=config,
                    status="done",
                    cached=True,
                    result={"metrics": {"acc": acc}},
                )
            )
    entries.append(Entry(index=len(entries), key="failed", config={}, status="failed", cached=True))
    return [SweepResult(entries)]


def test_van_de_ven_compare_on_stored_results_against_table_3():
    accs = {
        ("class", "naive"): [0.20, 0.18],
        ("class", "si"): [0.25, 0.25],
        ("class", "lwf"): [0.50, 0.40],
        ("class", "joint"): [0.95, 0.97],
        ("class", "replay"): [0.90, 0.92],
    }
    out = vandeven_2018.compare(_fake_runs(accs))
    rows = {(r["group"], r["item"]): r for r in out.rows}
    lwf = rows[("class", "lwf")]
    assert lwf["measured_mean"] == pytest.approx(45.0)
    assert lwf["measured_std"] == pytest.approx(statistics.stdev([50.0, 40.0]))
    assert lwf["published"] == 24.17 and lwf["published_sem"] == 0.51
    assert lwf["difference"] == pytest.approx(45.0 - 24.17)
    assert rows[("class", "replay")]["published"] is None  # no exact replay in Table 3
    assert rows[("task", "naive")]["n"] == 0 and rows[("task", "naive")]["published"] == 85.15
    by_group = {a["group"]: a for a in out.agreement}
    # class: published naive 19.90 < si 20.04 < lwf 24.17 < joint 97.93, measured the same order
    assert by_group["class"]["items"] == ["naive", "si", "lwf", "joint"]
    assert by_group["class"]["rho"] == pytest.approx(1.0)
    assert by_group["task"]["rho"] is None  # nothing measured there


def test_van_de_ven_2019_numbers_carry_their_sources():
    rows = {(p.group, p.item): p for p in vandeven_2019.PUBLISHED}
    assert rows[("task", "ewc")].value == 98.64 and rows[("task", "ewc")].source == "T4"
    assert rows[("class", "joint")].value == 97.9 and rows[("class", "joint")].approx
    assert ("task", "replay") not in rows  # missing in the source: not invented
    assert "replay" in splitmnist_protocol.METHODS


def test_blog_ranks_agree_when_the_measured_order_matches():
    order = ["joint", "replay", "low-lr", "naive", "model-avg"]
    accs = {("domain", s): [0.9 - 0.1 * i] for i, s in enumerate(order)}
    accs[("domain", "l2")] = [0.99]  # unranked by the blog: shown, not ordered
    out = blog_strategies.compare(_fake_runs(accs))
    (agreement,) = out.agreement
    assert agreement["items"] == order and agreement["rho"] == pytest.approx(1.0)
    assert {r["item"]: r["rank"] for r in out.rows}["l2"] is None


# ---- the command line ----------------------------------------------------------------------------


def test_cli_lists_the_entries(monkeypatch, capsys, tmp_path):
    out_json = tmp_path / "list.json"
    assert run_cli(monkeypatch, "reproduce", "list", "--json", str(out_json)) == 0
    out = capsys.readouterr().out
    for name in ENTRIES:
        assert name in out
    assert "63 configs" in out
    listed = json.loads(out_json.read_text())
    assert [e["name"] for e in listed] == list(ENTRIES)


def test_cli_refuses_bad_input_with_one_line(monkeypatch, capsys):
    assert run_cli(monkeypatch, "reproduce", "nope") == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "'nope' is not an entry" in err
    assert run_cli(monkeypatch, "reproduce", "blog-strategies", "--variant", "full") == 2
    assert "--variant: 'full' is not a variant of blog-strategies" in capsys.readouterr().err
    assert run_cli(monkeypatch, "reproduce", "vandeven-2019", "--max-configs", "10") == 2
    assert "63 configs, more than the 10 allowed" in capsys.readouterr().err


def test_cli_runs_a_tiny_entry_end_to_end_then_answers_from_the_store(
    monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv(TINY_ENV, "1")
    out_json = tmp_path / "out.json"
    argv = ("reproduce", "thesis-temperature", "--jobs", "1", "--quiet", "--json", str(out_json))
    assert run_cli(monkeypatch, *argv) == 0
    out = capsys.readouterr().out
    assert "| MLP-8 | T=1 | κ (%) |" in out and "1 configs: 1 computed, 0 cached" in out
    doc = json.loads(out_json.read_text())
    assert doc["entry"] == "thesis-temperature" and doc["sources"]["T6.3.1"]["where"]
    (entry,) = doc["sweeps"][0]["entries"]
    kappa = {r["item"]: r for r in doc["comparison"]["rows"] if r["metric"] == "κ (%)"}
    # The comparison is the stored result's κ, in percent, against Table 6.3.1.
    for t, value in zip(entry["metrics"]["temperatures"], entry["metrics"]["kappa"], strict=True):
        row = kappa[f"T={t:g}"]
        assert row["measured_mean"] == pytest.approx(100 * value)
        assert row["difference"] == pytest.approx(100 * value - row["published"])
    assert kappa["T=1000"]["n"] == 0  # the tiny run trains T = 1, 10, 100 only
    assert run_cli(monkeypatch, *argv) == 0
    assert "1 configs: 0 computed, 1 cached" in capsys.readouterr().out
    assert run_cli(monkeypatch, "reproduce", "thesis-temperature", "--no-run") == 0
    assert "1 configs: 0 computed, 1 cached" in capsys.readouterr().out
    # --dry-run lists the configs and which are stored.
    assert run_cli(monkeypatch, "reproduce", "thesis-temperature", "--dry-run") == 0
    assert " cached  temperature" in capsys.readouterr().out


# ---- the real thing ------------------------------------------------------------------------------


@pytest.mark.slow
def test_van_de_ven_on_one_seed_reproduces_the_scenario_pattern():
    """The embedded protocol for real, seed 0: 21 runs (~9 CPU-minutes, 5 on 2 idle cores)."""
    module = reproduce.entry("vandeven-2019")
    results = reproduce.run(module, seeds=1, n_jobs=2)
    assert all(r.counts()["failed"] == 0 for r in results)
    rows = {(r["group"], r["item"]): r["measured_mean"] for r in module.compare(results).rows}
    # Class-IL: regularisation stays near a fifth, replay and joint far above it (the paper's
    # central finding), and LwF above naive.
    for method in ("naive", "ewc", "online-ewc", "si"):
        assert rows[("class", method)] < 30, method
    assert rows[("class", "replay")] > 80 and rows[("class", "joint")] > 90
    assert rows[("class", "lwf")] > rows[("class", "naive")]
    # Task-IL is the easy scenario: every method above 90; domain-IL sits between.
    assert min(rows[("task", m)] for m in splitmnist_protocol.METHODS) > 90
    assert rows[("domain", "naive")] < rows[("domain", "replay")] < rows[("domain", "joint")] + 1
    # Domain-IL keeps the papers' order None < EWC/online EWC < SI < LwF ≪ Offline (ρ 0.94 on
    # seed 0); in class-IL the two methods the papers put on top are on top here too.
    agreement = {a["group"]: a["rho"] for a in module.compare(results).agreement}
    assert agreement["domain"] > 0.8
    published = [m for m in splitmnist_protocol.METHODS if m != "replay"]
    top = sorted(published, key=lambda m: rows[("class", m)])[-2:]
    assert set(top) == {"lwf", "joint"}
