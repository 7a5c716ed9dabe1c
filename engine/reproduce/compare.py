"""Published against measured: one row per (group, item, metric), and per group whether the
ordering of the items agrees (Spearman's rank correlation, scipy.stats.spearmanr).

Each row holds the measured mean and sample standard deviation over the seeds that have a
result, the published value (and the spread the source gives), and their difference
(measured − published, in the published units). An item measured but never published (a number
the source does not give) keeps an empty published cell; a published item not measured yet an
empty measured one.

Ordering agreement is computed within each (group, metric) over the items that have both a
measured mean and a published value or rank (rank 1 = best = highest value). With fewer than
three such items, or when one side ties every item, there is no ordering to compare.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from scipy.stats import spearmanr

from engine.reproduce.base import Measured, Published

MIN_ITEMS = 3  # Spearman's ρ of two items is always ±1: no evidence either way
AGREES, PARTLY = 0.8, 0.4  # ρ thresholds of the verdict words


@dataclass
class Comparison:
    rows: list[dict] = field(default_factory=list)
    agreement: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rows": self.rows, "agreement": self.agreement}

    def markdown(self, digits: int = 2) -> str:
        """The comparison as two Markdown tables (rows, then ordering agreement)."""

        def num(x: float | None, signed: bool = False) -> str:
            if x is None:
                return "—"
            return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"

        lines = [
            "| group | item | metric | measured (mean ± std, n) | published | difference |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            if r["measured_mean"] is None:
                measured = "—"
            else:
                spread = "" if r["measured_std"] is None else f" ± {num(r['measured_std'])}"
                measured = f"{num(r['measured_mean'])}{spread} (n={r['n']})"
            if r["published"] is not None:
                sem = "" if r["published_sem"] is None else f" ± {num(r['published_sem'])}"
                published = f"{'≈ ' if r['approx'] else ''}{num(r['published'])}{sem}"
            elif r["rank"] is not None:
                published = f"rank {r['rank']}"
            else:
                published = "missing"
            lines.append(
                f"| {r['group']} | {r['item']} | {r['metric']} | {measured} | {published} | "
                f"{num(r['difference'], signed=True)} |"
            )
        lines += ["", "| group | metric | items | Spearman ρ | ordering |", "|---|---|---|---|---|"]
        for a in self.agreement:
            rho = "—" if a["rho"] is None else f"{a['rho']:+.2f}"
            lines.append(f"| {a['group']} | {a['metric']} | {a['n']} | {rho} | {a['verdict']} |")
        return "\n".join(lines)


def verdict(rho: float | None, why: str = "") -> str:
    if rho is None:
        return why or f"fewer than {MIN_ITEMS} items to order"
    if rho >= AGREES:
        return "agrees"
    if rho >= PARTLY:
        return "partly agrees"
    return "disagrees"


def spearman(published: list[float], measured: list[float]) -> tuple[float | None, str]:
    """(ρ, reason when there is none)."""
    if len(published) < MIN_ITEMS:
        return None, f"fewer than {MIN_ITEMS} items to order"
    if len(set(published)) == 1:
        return None, "the published values tie"
    if len(set(measured)) == 1:
        return None, "the measured values tie"
    rho = float(spearmanr(published, measured).statistic)
    return (None, "no ordering") if math.isnan(rho) else (rho, "")


def comparison(published: Iterable[Published], measured: Iterable[Measured]) -> Comparison:
    """The comparison table of ``published`` against ``measured`` (see the module docstring)."""
    published = list(published)
    values: dict[tuple[str, str, str], list[float]] = {}
    for m in measured:
        if isinstance(m.value, int | float) and math.isfinite(m.value):
            values.setdefault((m.group, m.item, m.metric), []).append(float(m.value))
    keys = list(dict.fromkeys([(p.group, p.item, p.metric) for p in published] + list(values)))
    group_order = {g: i for i, g in enumerate(dict.fromkeys(k[0] for k in keys))}
    keys.sort(key=lambda k: group_order[k[0]])  # stable: each group's rows stay in order
    by_key = {(p.group, p.item, p.metric): p for p in published}
    rows = []
    for key in keys:
        p, vals = by_key.get(key), values.get(key, [])
        mean = statistics.fmean(vals) if vals else None
        rows.append(
            {
                "group": key[0],
                "item": key[1],
                "metric": key[2],
                "n": len(vals),
                "measured_mean": mean,
                "measured_std": statistics.stdev(vals) if len(vals) > 1 else None,
                "published": None if p is None else p.value,
                "published_sem": None if p is None else p.sem,
                "rank": None if p is None else p.rank,
                "approx": False if p is None else p.approx,
                "difference": None
                if p is None or p.value is None or mean is None
                else mean - p.value,
                "source": "" if p is None else p.source,
            }
        )
    groups = list(dict.fromkeys((r["group"], r["metric"]) for r in rows))
    agreement = []
    for group, metric in groups:
        pub, mes, items = [], [], []
        for r in rows:
            if (r["group"], r["metric"]) != (group, metric) or r["measured_mean"] is None:
                continue
            order = r["published"] if r["published"] is not None else _from_rank(r["rank"])
            if order is None:
                continue
            pub.append(order)
            mes.append(r["measured_mean"])
            items.append(r["item"])
        rho, why = spearman(pub, mes)
        agreement.append(
            {
                "group": group,
                "metric": metric,
                "n": len(items),
                "items": items,
                "rho": rho,
                "verdict": verdict(rho, why),
            }
        )
    return Comparison(rows, agreement)


def _from_rank(rank: int | None) -> float | None:
    return None if rank is None else -float(rank)  # rank 1 is the best: the highest value


def measurements(results, measure: Callable) -> list[Measured]:
    """Every measurement of the stored, finished entries of some sweep results."""
    out: list[Measured] = []
    for result in results:
        for e in result.entries:
            if e.result is not None and e.status == "done":
                out.extend(measure(e))
    return out
