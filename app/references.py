"""The works the app draws on, cited once: the project's five source documents and the papers the
strategies, metrics and analyses follow.

Pages mention them in passing ("thesis 5.2", "the blog's 50 %", "the course"); :func:`ref_link`
turns such a mention into a link to its entry on the References page, and :func:`link_mentions`
does it for text written elsewhere (a strategy's summary, a field's description).

Each citation gives what could be checked: the seeds' own title pages and reference lists (the
thesis's bibliography, the lecture notes' references), the project's docs, and the papers'
public records. Where a seed does not name its author or site, the entry says so rather than
guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PAGE = "references"  # the page's url_path (app/main.py)


@dataclass(frozen=True)
class Reference:
    key: str  # the anchor on the References page
    short: str  # how the app mentions it
    citation: str  # markdown
    used_by: tuple[str, ...]  # where the app draws on it: "Page: what"
    seed: str | None = None  # the file in ../shared/seeds, for the project's source documents
    url: str | None = None


SEEDS: tuple[Reference, ...] = (
    Reference(
        key="thesis",
        short="the thesis",
        citation=(
            "Wojciech Masarczyk. *Data representations in non-stationary optimization*. "
            "Ph.D. thesis, Warsaw University of Technology, 2025 (supervisor: prof. Tomasz "
            "Trzciński)."
        ),
        used_by=(
            "Tunnel: chapter 5, the tunnel effect (5.2 the main result, 5.3 rank and "
            "out-of-distribution probes, 5.4 and 5.11 task-incremental learning, 5.12 CKA)",
            "Tunnel: 6.3, training at softmax temperature 1 / 10 / 100 / 1000",
            "Softmax: chapter 6, rank deficit bias (6.2), Proposition 2's spectral-gap bound "
            "(6.2.4), the deep-linear toy (6.2.1)",
            "Representations: chapter 3, generative versus discriminative representations "
            "under forgetting; 5.12, CKA between layers",
            "Learn: the tunnel, softmax and rank lessons",
        ),
        seed="003_d68e8a0d795ffa1c.txt",
    ),
    Reference(
        key="course",
        short="the course",
        citation=(
            "UC Berkeley deep neural networks course: (1) EECS 182 *Deep Neural Networks*, "
            "Fall 2025, Anant Sahai and Gireeja Ranade, Discussion 12 (entropy, cross-entropy "
            "and KL divergence); (2) CS182/282A *Deep Neural Networks*, Spring 2023, Lecture 21 "
            "(April 14): *Catastrophic forgetting, knowledge distillation and meta-learning*, "
            "lecturer Anant Sahai, scribe notes by Johan Fredrik Agerup."
        ),
        used_by=(
            "Learn: the KL-divergence lesson (Discussion 12)",
            "Learn: frozen features versus fine-tuning versus joint training, and "
            "distillation with temperature-softened targets (Lecture 21, eq. 21.1)",
            "Strategies: frozen (frozen feature extraction), cumulative, replay, lora (low-rank "
            "adapters), lwf's distillation loss (Lecture 21, eq. 21.1)",
            "Compare: the stability–plasticity trade-off (Lecture 21)",
        ),
        seed="000_dcbaa95348b17cbf.txt, 001_766704d599d37cb1.txt",
    ),
    Reference(
        key="guide",
        short="the guide",
        citation=(
            "A web guide page on catastrophic forgetting in fine-tuning: its mechanisms, how to "
            "detect it, and mitigation by EWC, knowledge distillation, rehearsal, selective "
            "freezing and low learning rates (one page of a longer guide to fine-tuning; the "
            "copy the project holds names no author, title or site)."
        ),
        used_by=(
            "Strategies: freeze-k (selective fine-tuning), low-lr (low learning rate, early "
            "stopping), feature-distill, lwf's T = 2, ewc's λ (\"start with λ = 1000–10000\")",
            "Learn: the EWC and distillation lessons",
        ),
        seed="002_7fa5957d5f669754.txt",
    ),
    Reference(
        key="blog",
        short="the blog",
        citation=(
            "*Catastrophic Forgetting – Part 2*, a blog post by an engineer at Sophos on "
            "keeping a monthly fine-tuned production model accurate on past months: model "
            "averaging, data rehearsal (50 % past data), L2 regularisation, a lower learning "
            "rate, and EWC with the squared-gradient Fisher (the copy the project holds names "
            "no author or date)."
        ),
        used_by=(
            "Forgetting: accuracy of every task over training steps (the blog's plot)",
            "Strategies: replay's share of 50 % from the buffer, model-avg (its negative "
            "result), low-lr (a tenth of the learning rate), l2, cumulative (retrain on "
            "everything), and why ewc and si keep the Fisher's sign in check",
            "Learn: EWC from a Taylor expansion, with the squared-gradient Fisher",
        ),
        seed="004_98f73398bc6bed6c.txt",
    ),
)

LITERATURE: tuple[Reference, ...] = (
    Reference(
        key="van-de-ven-2019",
        short="van de Ven & Tolias 2019",
        citation=(
            "Gido M. van de Ven and Andreas S. Tolias. *Three scenarios for continual "
            "learning*. arXiv:1904.07734, 2019."
        ),
        used_by=(
            "Forgetting: the three scenarios (task-, domain- and class-incremental) and why "
            "regularisation fails in class-IL without replay",
            "Strategies (docs/strategies-regularization.md): the regularisers' split-MNIST "
            "results at small λ",
        ),
        url="https://arxiv.org/abs/1904.07734",
    ),
    Reference(
        key="van-de-ven-2022",
        short="van de Ven et al. 2022",
        citation=(
            "Gido M. van de Ven, Tinne Tuytelaars and Andreas S. Tolias. *Three types of "
            "incremental learning*. Nature Machine Intelligence 4, 1185–1197, 2022."
        ),
        used_by=(
            "Forgetting: the scenario notes beside the strategy (what each scenario asks of a "
            "strategy)",
            "Strategies: the settings cited as van de Ven et al.'s in ewc, online-ewc, si and "
            "lwf (lwf's class-IL distillation over every unit seen so far)",
        ),
        url="https://doi.org/10.1038/s42256-022-00568-3",
    ),
    Reference(
        key="lopez-paz-2017",
        short="Lopez-Paz & Ranzato 2017",
        citation=(
            "David Lopez-Paz and Marc'Aurelio Ranzato. *Gradient episodic memory for continual "
            "learning*. Advances in Neural Information Processing Systems 30 (NeurIPS 2017), "
            "pp. 6467–6476."
        ),
        used_by=("Forgetting and Compare: the accuracy matrix R[t,i], BWT and FWT",),
    ),
    Reference(
        key="kirkpatrick-2017",
        short="Kirkpatrick et al. 2017",
        citation=(
            "James Kirkpatrick, Razvan Pascanu, Neil Rabinowitz, Joel Veness, Guillaume "
            "Desjardins, Andrei A. Rusu, Kieran Milan, John Quan, Tiago Ramalho, Agnieszka "
            "Grabska-Barwinska, Demis Hassabis, Claudia Clopath, Dharshan Kumaran and Raia "
            "Hadsell. *Overcoming catastrophic forgetting in neural networks*. Proceedings of "
            "the National Academy of Sciences 114(13), 3521–3526, 2017."
        ),
        used_by=("Strategies: ewc (and its Fisher)", "Learn: the EWC lesson"),
        url="https://doi.org/10.1073/pnas.1611835114",
    ),
    Reference(
        key="schwarz-2018",
        short="Schwarz et al. 2018",
        citation=(
            "Jonathan Schwarz et al. *Progress & Compress: A scalable framework for continual "
            "learning*. ICML 2018."
        ),
        used_by=("Strategies: online-ewc (one running Fisher and one anchor)",),
    ),
    Reference(
        key="zenke-2017",
        short="Zenke et al. 2017",
        citation=(
            "Friedemann Zenke, Ben Poole and Surya Ganguli. *Continual learning through "
            "synaptic intelligence*. ICML 2017."
        ),
        used_by=("Strategies: si",),
    ),
    Reference(
        key="li-hoiem-2017",
        short="Li & Hoiem 2017",
        citation=(
            "Zhizhong Li and Derek Hoiem. *Learning without forgetting*. IEEE Transactions on "
            "Pattern Analysis and Machine Intelligence 40(12), 2935–2947, 2018 (arXiv 2016; "
            "cited as 2017 in the course's lecture notes)."
        ),
        used_by=("Strategies: lwf", "Learn: the distillation lesson"),
    ),
    Reference(
        key="hinton-2015",
        short="Hinton et al. 2015",
        citation=(
            "Geoffrey Hinton, Oriol Vinyals and Jeff Dean. *Distilling the knowledge in a "
            "neural network*. arXiv:1503.02531, 2015."
        ),
        used_by=("Strategies: lwf's temperature T", "Learn: the distillation lesson"),
        url="https://arxiv.org/abs/1503.02531",
    ),
    Reference(
        key="chaudhry-2019",
        short="Chaudhry et al. 2019",
        citation=(
            "Arslan Chaudhry, Marc'Aurelio Ranzato, Marcus Rohrbach and Mohamed Elhoseiny. "
            "*Efficient lifelong learning with A-GEM*. ICLR 2019 (arXiv:1812.00420)."
        ),
        used_by=("Strategies: agem (memory per task, reference batch)",),
        url="https://arxiv.org/abs/1812.00420",
    ),
    Reference(
        key="buzzega-2020",
        short="Buzzega et al. 2020",
        citation=(
            "Pietro Buzzega, Matteo Boschini, Angelo Porrello, Davide Abati and Simone "
            "Calderara. *Dark experience for general continual learning: a strong, simple "
            "baseline*. NeurIPS 2020."
        ),
        used_by=("Strategies: der (DER++: replay of labels and logits)",),
    ),
    Reference(
        key="aljundi-2018",
        short="Aljundi et al. 2018",
        citation=(
            "Rahaf Aljundi, Francesca Babiloni, Mohamed Elhoseiny, Marcus Rohrbach and Tinne "
            "Tuytelaars. *Memory aware synapses: learning what (not) to forget*. ECCV 2018."
        ),
        used_by=(
            "Further reading: importance from the output's sensitivity, the third member of "
            "the EWC / SI family (no strategy here implements it yet)",
        ),
    ),
    Reference(
        key="kornblith-2019",
        short="Kornblith et al. 2019",
        citation=(
            "Simon Kornblith, Mohammad Norouzi, Honglak Lee and Geoffrey Hinton. *Similarity "
            "of neural network representations revisited*. ICML 2019 (PMLR 97)."
        ),
        used_by=("Representations and Tunnel: CKA between layers and across tasks",),
    ),
    Reference(
        key="masarczyk-2023",
        short="Masarczyk et al. 2023",
        citation=(
            "Wojciech Masarczyk, Mateusz Ostaszewski, Ehsan Imani, Razvan Pascanu, Piotr Miłoś "
            "and Tomasz Trzciński. *The tunnel effect: building data representations in deep "
            "neural networks*. NeurIPS 2023 (chapter 5 of the thesis)."
        ),
        used_by=("Tunnel: rank and linear probes by layer; the extractor and the tunnel",),
    ),
    Reference(
        key="masarczyk-2025",
        short="Masarczyk et al. 2025",
        citation=(
            "Wojciech Masarczyk, Mateusz Ostaszewski, Tin Sum Cheng, Tomasz Trzciński, "
            "Aurelien Lucchi and Razvan Pascanu. *Unpacking softmax: how temperature drives "
            "rank collapse, compression and generalization*. Under review at ICML 2025 "
            "(chapter 6 of the thesis)."
        ),
        used_by=("Softmax: the whole page", "Tunnel: training at a softmax temperature"),
    ),
)

REFERENCES: dict[str, Reference] = {r.key: r for r in (*SEEDS, *LITERATURE)}


def ref_link(key: str, text: str | None = None) -> str:
    """A markdown link to ``key``'s entry on the References page, e.g.
    ``ref_link("thesis", "thesis 5.2")`` → ``[thesis 5.2](/references#thesis)``. The text
    defaults to the reference's short name; an unknown key is a programming error (KeyError)."""
    ref = REFERENCES[key]
    label = (text if text is not None else ref.short).replace("[", "(").replace("]", ")")
    return f"[{label}](/{PAGE}#{ref.key})"


# Mentions in running text → the reference they mean; the longest phrases first, so "the
# blog's 50 %" links as a whole rather than "the blog" alone.
_MENTIONS: tuple[tuple[str, str], ...] = (
    (r"thesis (?:Fig\. |Prop(?:osition|\.) )?\d+(?:\.\d+)*", "thesis"),
    (r"the blog's 50 ?%", "blog"),
    (r"the blog(?:'s)?", "blog"),
    (r"(?<=\()blog(?=[:)])", "blog"),
    (r"the course", "course"),
    (r"lecture eq\. 21\.1", "course"),
    (r"the guide(?:'s)?", "guide"),
    (r"van de Ven (?:& Tolias )?(?:et al\.? )?\(?2019\)?", "van-de-ven-2019"),
    (r"van de Ven et al\.?(?:'s)?", "van-de-ven-2022"),
    (r"Kirkpatrick et al\.? ?\(?2017\)?", "kirkpatrick-2017"),
    (r"Li & Hoiem(?: 2017)?", "li-hoiem-2017"),
    (r"Zenke(?:, Poole & Ganguli| et al\.?)(?: 2017)?", "zenke-2017"),
    (r"Chaudhry et al\.?(?:,? ICLR)? 2019", "chaudhry-2019"),
    (r"Buzzega et al\.?(?:,? NeurIPS)? 2020", "buzzega-2020"),
    (r"Kornblith et al\.? ?\(?2019\)?", "kornblith-2019"),
    (r"Hinton(?: et al\.?)?(?: 2015)?", "hinton-2015"),
    (r"Schwarz et al\.? 2018", "schwarz-2018"),
)
_MENTION = re.compile("|".join(f"({p})" for p, _ in _MENTIONS))


def link_mentions(text: str) -> str:
    """``text`` (markdown) with each mention of a reference made a link to it (see _MENTIONS)."""

    def link(match: re.Match) -> str:
        key = _MENTIONS[match.lastindex - 1][1]
        return ref_link(key, match.group(0))

    return _MENTION.sub(link, text)
