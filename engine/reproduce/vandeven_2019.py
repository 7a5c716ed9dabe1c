"""van de Ven & Tolias (2019), Table 4: Split MNIST in the three scenarios (“Three scenarios for
continual learning”), against the engine's methods on the same protocol.

Published numbers: Table 4 of arXiv:1904.07734 (v1, 15 Apr 2019), average test accuracy over
all tasks in %, mean over 20 seeds. The paper itself is not in this project's reference
index; the numbers are as two independent transcriptions of that table give them (see
SOURCES), which agree digit for digit; the offline upper bound is given by one of them only, to
one decimal. Their standard errors were not transcribed, so none is shown.
"""

from __future__ import annotations

from engine.reproduce import splitmnist_protocol as protocol
from engine.reproduce.base import Published, Source
from engine.reproduce.compare import comparison, measurements

NAME = "vandeven-2019"
TITLE = "van de Ven & Tolias 2019 — Three scenarios: Split MNIST (Table 4)"
CITATION = (
    "G. M. van de Ven and A. S. Tolias, “Three scenarios for continual learning”, "
    "arXiv:1904.07734 (2019), Table 4 (split MNIST). Published as van de Ven, Tuytelaars & "
    "Tolias, “Three types of incremental learning”, Nature Machine Intelligence 4:1185–1197 "
    "(2022), doi:10.1038/s42256-022-00568-3."
)
SOURCES = {
    "T4": Source(
        "T4",
        "arXiv:1904.07734, Table 4 (split MNIST; Task-IL / Domain-IL / Class-IL; None, EWC, "
        "Online EWC, SI, LwF to two decimals)",
        "secondary: a literature memo in the project's reference-search index (stored-file id "
        "58776405790) that states it copied the table from ar5iv.org/abs/1904.07734, checked "
        "against a second, independent summary (ids 59202398122, 59429533137) that gives the "
        "same values to one decimal",
        "Not read from the paper itself; replace with the paper's own text when it is at hand.",
    ),
    "T4-1dp": Source(
        "T4-1dp",
        "arXiv:1904.07734, Table 4, “Offline (upper bound)” row, to one decimal",
        "secondary: the summary with stored-file ids 59202398122 / 59429533137 only",
    ),
    "code": protocol.HYPERPARAMETERS,
}
VARIANTS = protocol.VARIANTS
PROTOCOL = protocol.protocol_text()
DEVIATIONS = protocol.DEVIATIONS + (
    "\n- **Method names.** “None” is `naive`, “Offline” is `joint`. The paper's DGR, "
    "DGR+distill, XdG and iCaRL rows have no counterpart among the engine's strategies."
)
METRIC = protocol.METRIC

_TABLE_4 = {  # method: (task, domain, class) in %
    "naive": (87.19, 59.21, 19.90),
    "ewc": (98.64, 63.95, 20.01),
    "online-ewc": (99.12, 64.32, 19.96),
    "si": (99.09, 65.36, 19.99),
    "lwf": (99.57, 71.50, 23.85),
}
_OFFLINE = (99.7, 98.4, 97.9)  # one decimal: the only transcription that has the row

PUBLISHED = tuple(
    Published(scenario, method, METRIC, _TABLE_4[method][i], "T4")
    if method in _TABLE_4
    else Published(scenario, method, METRIC, _OFFLINE[i], "T4-1dp", approx=True)
    for i, scenario in enumerate(protocol.SCENARIOS)
    for method in protocol.METHODS
    if method in _TABLE_4 or method == "joint"
)


def sweeps(variant: str = "embedded", seeds: int | None = None) -> list[dict]:
    return protocol.sweeps(variant, seeds)


measure = protocol.measure


def compare(results):
    """Table 4 against the measured ACC, per scenario (ordering over the methods)."""
    return comparison(PUBLISHED, measurements(results, measure))
