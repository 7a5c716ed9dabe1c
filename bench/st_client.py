"""A Streamlit client that speaks the browser's websocket protocol: the protobuf ``BackMsg`` a
browser sends (a script run with the query string, the page and the widgets' values), the
``ForwardMsg`` it receives (the elements the run drew). The load bench's sessions, ordinary and
hostile, use it instead of a browser; a hostile one can send any widget value or button press a
browser could, and a forged ``X-Forwarded-For`` on the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

RERUN_EARLY = 2  # ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN: another script run follows
ERROR, WARNING = 1, 2  # Alert.Format
OPEN_TIMEOUT_S = 60  # a busy 2-core server can take seconds to answer a handshake


@contextlib.asynccontextmanager
async def connect(url: str, forwarded_for: str | None = None) -> AsyncIterator:
    """A websocket to the app at ``url``; ``forwarded_for`` goes in the handshake's
    X-Forwarded-For header, as a reverse proxy in front of the app would set it."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    ws_url = url.replace("http", "ws", 1) + "/_stcore/stream"
    async with websockets.connect(
        ws_url,
        subprotocols=["streamlit"],
        max_size=None,
        additional_headers=headers,
        open_timeout=OPEN_TIMEOUT_S,
    ) as ws:
        yield ws


class Session:
    """One tab: a websocket speaking Streamlit's protocol, as the browser does."""

    def __init__(self, ws, query: str, page_name: str = "") -> None:
        self.ws, self.query, self.page_name = ws, query, page_name
        self.page_hash = ""
        self.errors: list[str] = []  # error alerts and exceptions, over every run
        self.exceptions: list[str] = []
        self.elements: list[Element] = []  # what the last run drew
        self.widgets: dict[str, WidgetState] = {}  # values this tab has set, sent with every run

    async def rerun(self, widgets: Iterable[WidgetState] = (), timeout: float = 120) -> list:
        """Ask for a script run; the elements it drew, once the run has finished. ``widgets``
        are sent once (a button press); values set with :meth:`set` go with every run."""
        back = BackMsg()
        state = back.rerun_script
        state.query_string, state.page_name = self.query, self.page_name
        state.page_script_hash = self.page_hash
        state.widget_states.widgets.extend([*self.widgets.values(), *widgets])
        await self.ws.send(back.SerializeToString())
        elements = []
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await asyncio.wait_for(self.ws.recv(), timeout))
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash or self.page_hash
            elif kind == "navigation":  # the page st.navigation ran: the next run asks for it
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                elements.append(el)
                if el.WhichOneof("type") == "exception":
                    self.exceptions.append(f"{el.exception.type}: {el.exception.message}")
                    self.errors.append(f"exception: {el.exception.message}")
                elif el.WhichOneof("type") == "alert" and el.alert.format == ERROR:
                    self.errors.append(f"error: {el.alert.body}")
            elif kind == "script_finished" and msg.script_finished != RERUN_EARLY:
                self.elements = elements
                return elements

    def set(self, key: str, **value) -> None:
        """Give the widget with this key (as the page names it) a value from now on, e.g.
        ``set("cfg:model.width", int_value=740)``; KeyError when the last run did not draw it."""
        wid = widget_id(self.elements, key)
        self.widgets[wid] = WidgetState(id=wid, **value)

    def goto(self, page_name: str) -> None:
        """Switch this tab to another page (its next run opens it), as a link in the app does;
        the session, and so the jobs it owns, stay the same."""
        self.page_name, self.page_hash = page_name, ""

    async def press(self, label: str, timeout: float = 120) -> list | None:
        """Press the first button with this label the last run drew (None if there is none)."""
        ids = [b.id for b in buttons(self.elements, label)]
        if not ids:
            return None
        return await self.rerun([WidgetState(id=ids[0], trigger_value=True)], timeout)


def texts(elements) -> list[str]:
    """The text a person reads: alerts, markdown and captions, progress bars' lines."""
    out = []
    for el in elements:
        kind = el.WhichOneof("type")
        if kind == "alert":
            out.append(el.alert.body)
        elif kind == "markdown":
            out.append(el.markdown.body)
        elif kind == "progress":
            out.append(el.progress.text)
    return out


def alerts(elements, fmt: int | None = None) -> list[str]:
    """Alert bodies (``fmt``: only errors, or only warnings)."""
    return [
        el.alert.body
        for el in elements
        if el.WhichOneof("type") == "alert" and (fmt is None or el.alert.format == fmt)
    ]


def buttons(elements, label: str | None = None) -> list:
    return [
        el.button
        for el in elements
        if el.WhichOneof("type") == "button" and (label is None or el.button.label == label)
    ]


def widget_id(elements, key: str) -> str:
    """The id of the widget whose key is ``key``, or whose key starts with ``key@`` (the
    sidebar keys a preset field by benchmark)."""
    for el in elements:
        proto = getattr(el, el.WhichOneof("type") or "", None)
        wid = getattr(proto, "id", "")
        if isinstance(wid, str) and (wid.endswith(f"-{key}") or f"-{key}@" in wid):
            return wid
    raise KeyError(f"no widget with key {key!r} on the page")
