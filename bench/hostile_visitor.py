"""The hostile visitor of the load bench: one browser — one address, many tabs — replaying every
attack of issue 15 on a hosted app while ordinary visitors use it.

* **tabs**: tabs on every computing page pressing Run at once on different expensive-but-allowed
  configs, some with an ``X-Forwarded-For`` that puts a made-up address before the real one
  (what a client sends through a proxy that appends the address it saw); past the visitor's
  share (``FORGET_MAX_JOBS_PER_VISITOR``) each must be refused, so the queue never fills.
* **links**: crafted links past the widgets' bounds on every page (5,000-character values,
  5,000-digit numbers, ``true`` for a number, a 999×999×999 synthetic set, …): no page may
  raise, every message stays under 400 characters and repeats no crafted value in full, and a
  field the page reads is named when refused.
* **over caps**: the sidebar's widgets set (as a forged browser can) to configs over the hosted
  caps, then Run: each must be refused with the cap named, never queued.
* **cancel**: the ordinary visitors' running jobs, on their own links and on the Runs page:
  no Cancel button may show on another visitor's job, and pressing what the page offered
  (forged) must not stop it.

:func:`replay` runs them and fills a :class:`Tally`; bench/load_sessions.py runs it beside the
ordinary sessions and prints the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from st_client import ERROR, WARNING, Session, alerts, buttons, connect, texts
from streamlit.proto.WidgetStates_pb2 import WidgetState

HOSTILE_IP = "203.0.113.66"  # TEST-NET-3: the one address behind every hostile tab
LONG = 5000  # characters of a crafted value
MAX_LINE = 400  # no message a page shows is longer
ECHO = 100  # a message holding this many characters of a crafted value repeats it in full
CANCEL_LABELS = ("Cancel", "Cancelling…")
TAB_TIMEOUT_S = 600  # a lesson's page waits for its runs to train (behind the queue)
REFUSED_COST = "over the hosted limit|more than this machine's"  # a cost cap, or the machine
RUNS_JOB = re.compile(r"^(\S+) · ([0-9a-f]{16,}) · ")  # the Runs page's line of a running job
LINK_FIELD = re.compile(r"not used — (?:v_)?([\w.]+)")

REASONS = (  # (words of the message, reason it is counted under)
    ("jobs per visitor", "visitor share"),
    ("queue:", "queue full"),
    ("parameters is over the hosted limit", "cap: parameters"),
    ("optimizer steps is over the hosted limit", "cap: steps"),
    ("multiply-adds is over the hosted limit", "cap: compute"),
    ("at peak is over the hosted limit", "cap: memory"),
    ("is not offered on this hosted demo", "cap: benchmark"),
    ("hosted time limit", "cap: wall clock"),
    ("more than this machine's", "machine memory"),
)


def reason(message: str) -> str:
    """What a refusal was for: the cap or share it names, else an invalid value."""
    for words, name in REASONS:
        if words in message:
            return name
    return "invalid value"


def refused_field(message: str) -> str | None:
    """The field a link refusal names ("A setting of the link was not used — c_lo: …")."""
    m = LINK_FIELD.search(message)
    return m.group(1) if m else None


def query(**params) -> str:
    return urlencode({k: str(v) for k, v in params.items()})


@dataclass(frozen=True)
class Visit:
    """A tab on ``page`` (its url path; "" the default page) opened on ``link``, pressing the
    buttons ``press`` in turn; ``expect``: patterns some message must match (the field or the
    cap named)."""

    page: str
    link: str
    press: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()  # regular expressions
    forwarded_for: str = HOSTILE_IP

    def __str__(self) -> str:
        text = f"/{self.page}?{self.link}" if self.link else f"/{self.page}"
        return text if len(text) <= 120 else f"{text[:117]}…"


# Expensive but within the caps (each about 1e11 multiply-adds or more: none ends while the
# tabs are still pressing), each a computation of its own, on every page that computes. The
# visitor's share admits two; the rest must be refused.
MNIST_400 = {"benchmark": "split-mnist5k", "epochs": 30, "batch_size": 32, "width": 400}
BIG_SOFTMAX = {"v_n": 128, "v_c_lo": -8, "v_c_hi": 12, "v_per_decade": 20, "v_iters": 50000}
EXPENSIVE = (
    Visit("", query(strategy="cumulative", n_tasks=10, batch_size=8, epochs=20), ("Run",)),
    Visit(
        "",
        query(
            benchmark="split-mnist5k",
            strategy="replay",
            grow_epoch="true",
            buffer_size=100000,
            batch_size=8,
        ),
        ("Run",),
    ),
    Visit("", query(**MNIST_400), ("Run",)),
    Visit("tunnel", "", ("Run",)),
    Visit("representations", query(v_epochs=40), ("Train the three models",)),
    Visit("softmax", query(**BIG_SOFTMAX)),
    Visit(
        "compare",
        query(**MNIST_400, v_mode="sweep", v_field="train.seed", v_values="1,2,3,4"),
        ("Run 4 missing",),
    ),
)
# The same visitor behind a proxy that appends the address it saw: the first entry is the
# client's own word, so it must not buy a new share.
SPOOFED = tuple(
    Visit(v.page, v.link, v.press, forwarded_for=f"198.18.{i}.1, {HOSTILE_IP}")
    for i, v in enumerate(
        (
            Visit("", query(**MNIST_400, seed=99), ("Run",)),
            Visit("tunnel", query(v_depth=8), ("Run",)),
            Visit("softmax", query(**BIG_SOFTMAX, v_seed=5, v_toy_seed=5)),
            Visit("representations", query(v_epochs=30), ("Train the three models",)),
        )
    )
)
DIGITS, CHARS = "9" * LONG, "x" * LONG
# Links past the widgets' bounds, on every page.
LINKS = (
    Visit(
        "softmax", query(v_c_lo=-300, v_c_hi=300, v_per_decade=20, v_n=128), (), ("c_lo", "c_hi")
    ),
    Visit("softmax", query(v_n=100000), (), (" — n:",)),
    Visit("softmax", query(v_iters=10000000), (), ("iters",)),
    Visit(
        "softmax",
        query(
            v_n=-3,
            v_per_decade="1e9",
            v_lr="nan",
            v_d="١٢",
            v_losses=CHARS,
            v_rel_tol="inf",
            v_tab=CHARS,
        ),
        (),
        (" — n:", "per_decade", " — lr:", "losses"),
    ),
    Visit("tunnel", query(v_depth=64, v_width=8192, v_epochs=1000), ("Run",), (REFUSED_COST,)),
    Visit(
        "tunnel",
        query(v_temperatures=CHARS, v_lr="inf", v_probe_epochs=-1, v_ood=CHARS, v_benchmark=DIGITS),
        ("Run temperatures",),
        ("temperatures", r"— (train\.)?lr:", "probe_epochs"),
    ),
    Visit("tunnel", query(v_depth="", v_width="none", v_epochs="", v_lr="none"), ()),  # None
    Visit("representations", query(v_epochs="none"), ()),
    Visit(
        "representations",
        query(v_n=100000, v_epochs=DIGITS, v_beta=1e9, v_benchmark=CHARS, v_tab=CHARS),
        (),
        (" — n:", "beta", "epochs"),
    ),
    Visit("", query(epochs=DIGITS), (), ("train.epochs",)),
    Visit("", query(split=DIGITS), (), ("data.split",)),
    Visit("", query(batch_size="true"), (), ("train.batch_size",)),
    Visit(
        "",
        query(synthetic_shape="999x999x999", benchmark="synthetic"),
        (),
        ("not offered on this hosted demo",),
    ),
    Visit(
        "",
        query(epochs=1000, seed="١٢", lr="nan", benchmark=CHARS, **{CHARS: "1"}),
        (),
        ("epochs=1000 is over a hosted cap", "seed", "lr", "benchmark"),
    ),
    Visit(
        "",
        query(benchmark="split-mnist5k", arch="cnn", depth=2, width=740, batch_size=8192),
        (),
        ("over a hosted cap",),
    ),
    Visit(
        "",
        query(benchmark="split-mnist5k", strategy="cumulative", n_tasks=10, batch_size=8),
        (),
        ("over a hosted cap",),
    ),
    Visit(
        "",
        query(strategy="replay", grow_epoch="true", batch_size=8, epochs=40, n_tasks=10),
        (),
        ("over a hosted cap",),
    ),
    Visit("compare", query(v_mode=CHARS, v_strategies=",".join(["ewc"] * 2000)), ()),
    Visit("compare", query(v_mode="bogus", v_strategies="nope"), (), ("v_mode", "v_strategies")),
    Visit(
        "compare",
        query(v_mode="sweep", v_field="train.epochs", v_values="1000,999"),
        ("Run 2 missing",),
        (REFUSED_COST,),
    ),
    Visit("compare", query(v_mode="sweep", v_field=CHARS, v_values=",".join(["1"] * 2000)), ()),
    Visit("compare", query(v_mode="file", v_source=CHARS, v_spec=CHARS, v_path="/etc/passwd"), ()),
    Visit("learn", query(v_lesson=CHARS, v_step=DIGITS), ()),
    Visit("learn", query(v_lesson="bogus", v_step=-5), ()),
    Visit("learn", query(v_lesson="three-approaches", v_step=2), ()),  # trains the lesson's runs
    Visit("runs", query(v_key=CHARS, epochs=DIGITS), ()),
    Visit("references", query(v_ref=CHARS), ()),
)
AUTO_PAGES = ("softmax", "learn")  # pages that submit their computations on opening
# Runs over the caps, set through the sidebar's widgets (a forged browser sends any value the
# widget's bounds allow), then Run: (name, widget values per script run).
OVER_CAPS = (
    (
        "cnn depth 2 width 740 on split-mnist5k at batch 8192",
        [
            {"cfg:data.benchmark": {"string_value": "split-mnist5k"}},
            {"cfg:model.arch": {"string_value": "cnn"}},
            {
                "cfg:model.depth": {"int_value": 2},
                "cfg:model.width": {"int_value": 740},
                "cfg:train.batch_size": {"int_value": 8192},
                "cfg:train.epochs": {"int_value": 30},
            },
        ],
    ),
    (
        "cumulative over 10 tasks of split-mnist5k at batch 8",
        [
            {
                "cfg:data.benchmark": {"string_value": "split-mnist5k"},
                "cfg:strategy.name": {"string_value": "cumulative"},
            },
            {"cfg:data.n_tasks": {"int_value": 10}, "cfg:train.batch_size": {"int_value": 8}},
        ],
    ),
    (
        "replay grow_epoch, 10 tasks, 40 epochs at batch 8",
        [
            {"cfg:strategy.name": {"string_value": "replay"}},
            {
                "cfg:strategy.replay.grow_epoch": {"bool_value": True},
                "cfg:data.n_tasks": {"int_value": 10},
                "cfg:train.batch_size": {"int_value": 8},
                "cfg:train.epochs": {"int_value": 40},
            },
        ],
    ),
)


@dataclass
class Tally:
    """What the hostile visitor asked and what it got."""

    requests: int = 0  # script runs it asked for (page opens, presses)
    refused: Counter = field(default_factory=Counter)  # reason → refusals, every attack
    link_fields: Counter = field(default_factory=Counter)  # field → link refusals naming it
    tabs_accepted: list[str] = field(default_factory=list)  # tabs whose Run was taken
    tabs_refused: list[str] = field(default_factory=list)
    spoofed_accepted: list[str] = field(default_factory=list)  # taken with a forged header
    over_caps_accepted: list[str] = field(default_factory=list)  # must stay empty
    over_caps_refused: Counter = field(default_factory=Counter)
    exceptions: list[str] = field(default_factory=list)  # link: exception on the page
    long_messages: list[str] = field(default_factory=list)
    echoes: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # expected words no message held
    silent: list[str] = field(default_factory=list)  # crafted links that drew no message at all
    others_jobs_seen: int = 0  # ordinary jobs seen running by the cancel probe
    cancel_buttons_on_others: int = 0  # must stay 0
    forged_presses: int = 0
    cancelled_own: int = 0
    max_hostile_active: int = 0  # jobs of the hostile visitor running or queued at once
    max_active: int = 0  # all jobs running or queued at once (the queue's fill)
    hostile_active_s: float = 0.0  # how long the bystander saw a hostile job going
    slowest_open_s: float = 0.0
    failures: list[str] = field(default_factory=list)  # a tab the server did not answer
    started: float = field(default_factory=time.monotonic)
    marks: dict = field(default_factory=dict)  # attack → seconds from the start to its end
    _counted: set = field(default_factory=set, repr=False)

    def report(self) -> dict:
        return {
            "requests": self.requests,
            "refused_by_reason": dict(self.refused.most_common()),
            "link_fields_refused": dict(self.link_fields.most_common()),
            "tabs": {"accepted": self.tabs_accepted, "refused": len(self.tabs_refused)},
            "spoofed_tabs_accepted": self.spoofed_accepted,
            "over_caps": {
                "accepted": self.over_caps_accepted,
                "refused": dict(self.over_caps_refused),
            },
            "exceptions": self.exceptions,
            "long_messages": self.long_messages,
            "echoes": self.echoes,
            "unanswered": self.unanswered,
            "silent_links": self.silent,
            "cancel": {
                "others_jobs_seen_running": self.others_jobs_seen,
                "cancel_buttons_on_others": self.cancel_buttons_on_others,
                "forged_presses": self.forged_presses,
                "own_jobs_cancelled": self.cancelled_own,
            },
            "max_hostile_active": self.max_hostile_active,
            "max_active_jobs": self.max_active,
            "hostile_jobs_going_s": round(self.hostile_active_s, 1),
            "slowest_open_s": round(self.slowest_open_s, 2),
            "failures": self.failures,
            "ended_s": self.marks,
        }

    def mark(self, name: str) -> None:
        self.marks[name] = round(time.monotonic() - self.started, 1)

    def read(self, visit: Visit | str, elements) -> list[str]:
        """Check what one script run drew and count its refusals (each message once per tab,
        however many runs show it again). Returns its error lines."""
        self.requests += 1
        self.exceptions += [
            f"{visit}: {el.exception.type}: {el.exception.message[:200]}"
            for el in elements
            if el.WhichOneof("type") == "exception"
        ]
        link = visit.link if isinstance(visit, Visit) else ""
        crafted = [v for _, v in parse_qsl(link) if len(v) >= ECHO]
        for body in alerts(elements):
            if len(body) > MAX_LINE:
                self.long_messages.append(f"{visit}: {len(body)} characters")
            if any(v[:ECHO] in body for v in crafted):
                self.echoes.append(f"{visit}: {body[:120]}")
        errors = alerts(elements, ERROR)
        for body in errors + alerts(elements, WARNING):
            if (str(visit), body) in self._counted:
                continue
            self._counted.add((str(visit), body))
            name = refused_field(body)
            if name is not None:
                self.link_fields[name] += 1
            if name is not None or body in errors:
                self.refused[reason(body)] += 1
        return errors


async def guarded(tally: Tally, what: str, attack) -> None:
    """Run one tab's attack; a tab the server dropped or never answered is counted, not raised
    (the other attacks go on)."""
    try:
        await attack
    except Exception as err:
        tally.failures.append(f"{what}: {type(err).__name__}: {str(err)[:200]}")


async def open_tab(
    url: str, visit: Visit, tally: Tally, stack: contextlib.AsyncExitStack, press: bool = True
) -> tuple[Session, list, list[str]]:
    """Open the link (the websocket stays open until ``stack`` closes) and, with ``press``,
    press its buttons; (session, last elements, error lines seen)."""
    t0 = time.perf_counter()
    ws = await stack.enter_async_context(connect(url, visit.forwarded_for))
    session = Session(ws, visit.link, visit.page)
    elements = await session.rerun(timeout=TAB_TIMEOUT_S)
    tally.slowest_open_s = max(tally.slowest_open_s, time.perf_counter() - t0)
    errors = tally.read(visit, elements)
    if press:
        return await press_buttons(session, visit, tally, elements, errors)
    return session, elements, errors


async def press_buttons(
    session: Session, visit: Visit, tally: Tally, elements: list, errors: list[str]
) -> tuple[Session, list, list[str]]:
    """Press the visit's buttons in turn; check that its expected messages showed."""
    seen = alerts(elements)
    for label in visit.press:
        pressed = await session.press(label)
        if pressed is not None:
            elements = pressed
            errors = errors + tally.read(visit, elements)
            seen += alerts(elements)
    for pattern in visit.expect:
        if not any(re.search(pattern, body) for body in seen):
            tally.unanswered.append(f"{visit}: no message matching {pattern!r}")
    return session, elements, errors


def owns_a_job(elements) -> bool:
    """The page shows this tab's own job going (its configs are its own, so nobody shares
    them): a progress bar, a Cancel button (only its owner sees one), or a result it just
    computed."""
    going = any(el.WhichOneof("type") == "progress" for el in elements)
    return (
        going
        or bool(buttons(elements, "Cancel"))
        or any("just computed" in t or "just finished" in t for t in texts(elements))
    )


async def tabs(url: str, tally: Tally, stack: contextlib.AsyncExitStack) -> list[Session]:
    """Many tabs of one visitor, some with a forged X-Forwarded-For: all open first, then all
    press Run at once (the pages that submit on opening open then), each on an expensive
    config of its own; the tabs stay open (until ``stack`` closes). Returns those that got a
    job."""
    visits = EXPENSIVE + SPOOFED
    pressing = [v for v in visits if v.page not in AUTO_PAGES]
    auto = [v for v in visits if v.page in AUTO_PAGES]
    opened = await asyncio.gather(*(open_tab(url, v, tally, stack, press=False) for v in pressing))
    pressed = await asyncio.gather(
        *(press_buttons(t[0], v, tally, t[1], t[2]) for v, t in zip(pressing, opened, strict=True)),
        *(open_tab(url, v, tally, stack) for v in auto),
    )
    results = dict(zip(pressing + auto, pressed, strict=True))
    owners = []
    for visit in visits:
        session, elements, errors = results[visit]
        name = f"{visit} (X-Forwarded-For: {visit.forwarded_for})"
        if owns_a_job(elements):
            owners.append(session)
            tally.tabs_accepted.append(name)
            if visit.forwarded_for != HOSTILE_IP:
                tally.spoofed_accepted.append(name)
        if any("jobs per visitor" in e for e in errors):
            tally.tabs_refused.append(name)
    return owners


async def cancel_own(sessions: list[Session], tally: Tally) -> None:
    """Each tab goes to the Runs page, where its session (the owner) sees its jobs' Cancel,
    and presses it."""

    async def one(session: Session) -> None:
        session.goto("runs")
        for wid in [b.id for b in buttons(await session.rerun(), "Cancel")]:
            await session.rerun([WidgetState(id=wid, trigger_value=True)])
            tally.cancelled_own += 1

    await asyncio.gather(*(one(s) for s in sessions))


async def links(url: str, tally: Tally, after: asyncio.Event, parallel: int = 3) -> None:
    """Every crafted link, ``parallel`` tabs at a time; links to a page that submits on
    opening wait for ``after`` (the tabs have pressed Run), so the tabs meet the share first."""
    todo = sorted(LINKS, key=lambda v: v.page in AUTO_PAGES)

    async def worker() -> None:
        while todo:
            await guarded(tally, str(todo[0]), one(todo.pop(0)))

    async def one(visit: Visit) -> None:
        if visit.page in AUTO_PAGES:
            await after.wait()
        async with contextlib.AsyncExitStack() as stack:
            session, elements, _ = await open_tab(url, visit, tally, stack)
        if not alerts(elements) and not session.errors:
            tally.silent.append(str(visit))

    await asyncio.gather(*(worker() for _ in range(parallel)))


async def over_caps(url: str, tally: Tally) -> None:
    """The sidebar set past the caps, widget by widget, then Run: refused, never queued."""
    for name, steps in OVER_CAPS:
        await guarded(tally, f"over caps: {name}", crafted_run(url, tally, name, steps))


async def crafted_run(url: str, tally: Tally, name: str, steps: list[dict]) -> None:
    """Set the sidebar's widgets one script run at a time (a benchmark changes which widgets
    exist), then press Run."""
    async with connect(url, HOSTILE_IP) as ws:
        session = Session(ws, "", "")
        await session.rerun()
        for values in steps:
            for key, value in values.items():
                session.set(key, **value)
            await session.rerun()
        elements = await session.press("Run")
        if elements is None:
            tally.over_caps_accepted.append(f"{name}: no Run button")
            return
        errors = tally.read(f"over caps: {name}", elements)
        capped = [e for e in errors if reason(e).startswith("cap:")]
        if capped:
            tally.over_caps_refused[reason(capped[0])] += 1
        else:
            tally.over_caps_accepted.append(f"{name}: {errors or texts(elements)[:3]}")


async def cancel_probe(
    url: str, tally: Tally, ordinary: list[tuple[str, str]], deadline: float
) -> None:
    """The ordinary visitors' jobs, as the hostile visitor sees them: on each config's own link
    (press what the page offered before the job started, once it runs) and on the Runs page."""

    async def one(link: str, key: str) -> None:
        async with connect(url, HOSTILE_IP) as ws:
            session = Session(ws, link)
            offered: list[str] = []
            while time.monotonic() < deadline:
                elements = await session.rerun()
                tally.requests += 1
                lines = texts(elements)
                if any(t.startswith("Done:") and key in t for t in lines):
                    return
                if any(t.startswith(("Training phase", "Queued", "Starting")) for t in lines):
                    tally.others_jobs_seen += 1
                    tally.cancel_buttons_on_others += sum(
                        len(buttons(elements, label)) for label in CANCEL_LABELS
                    )
                    for wid in offered:  # a forged press of the Run button it saw before
                        tally.forged_presses += 1
                        await session.rerun([WidgetState(id=wid, trigger_value=True)])
                        tally.requests += 1
                    return
                offered = [b.id for b in buttons(elements, "Run")]
                await asyncio.sleep(0.5)

    async def runs_page() -> None:
        keys = {key for _, key in ordinary}
        async with connect(url, HOSTILE_IP) as ws:
            session = Session(ws, "", "runs")
            while time.monotonic() < deadline:
                elements = await session.rerun()
                tally.requests += 1
                running = {m.group(2) for t in texts(elements) if (m := RUNS_JOB.match(t))}
                if running & keys:
                    tally.others_jobs_seen += len(running & keys)
                    tally.cancel_buttons_on_others += len(buttons(elements, "Cancel"))
                    return
                await asyncio.sleep(0.5)

    await asyncio.gather(
        guarded(tally, "cancel probe: runs page", runs_page()),
        *(guarded(tally, f"cancel probe: {link}", one(link, key)) for link, key in ordinary),
    )


async def watch(url: str, tally: Tally, ordinary_keys: set[str], stop: asyncio.Event) -> None:
    """The Runs page, as a bystander reads it every second: how many jobs are running or
    queued at once, and how many of them are not the ordinary visitors' (the hostile's)."""
    await guarded(tally, "bystander on the Runs page", bystander(url, tally, ordinary_keys, stop))


async def bystander(
    url: str, tally: Tally, ordinary_keys: set[str], stop: asyncio.Event, every_s: float = 1.0
) -> None:
    async with connect(url) as ws:
        session = Session(ws, "", "runs")
        last = time.monotonic()
        while not stop.is_set():
            keys = {m.group(2) for t in texts(await session.rerun()) if (m := RUNS_JOB.match(t))}
            tally.max_active = max(tally.max_active, len(keys))
            tally.max_hostile_active = max(tally.max_hostile_active, len(keys - ordinary_keys))
            now = time.monotonic()
            if keys - ordinary_keys:
                tally.hostile_active_s += now - last
            last = now
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except TimeoutError:
                pass


async def replay(
    url: str,
    tally: Tally,
    ordinary: list[tuple[str, str]],
    tabs_done: asyncio.Event,
    cancels: bool,
    deadline: float,
) -> None:
    """Every attack at once: the tabs (``tabs_done`` is set once they have pressed Run), the
    cancel probe (it waits for the ordinary visitors' jobs), the links and the over-cap runs.
    ``cancels``: once its tabs have pressed Run, the visitor cancels the jobs it got.
    ``ordinary``: the ordinary visitors' (link, key) pairs."""

    async def timed(name: str, attack) -> None:
        await attack
        tally.mark(name)

    async def press_tabs() -> None:
        async with contextlib.AsyncExitStack() as stack:
            try:
                owners = await tabs(url, tally, stack)
            finally:
                tally.mark("tabs")
                tabs_done.set()
            if cancels:
                await cancel_own(owners, tally)
                tally.mark("cancelled its jobs")

    await asyncio.gather(
        press_tabs(),
        timed("cancel probe", cancel_probe(url, tally, ordinary, deadline)),
        timed("links", links(url, tally, tabs_done)),
        timed("over caps", over_caps(url, tally)),
    )
