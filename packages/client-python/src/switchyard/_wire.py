"""Wire-level helpers shared by the client's modules."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection

from ._errors import InvalidArgumentError, SwitchyardError

CHANNEL_PATTERN = re.compile(r"^[A-Za-z0-9:_\-.@/]{1,200}$")

Frame = dict[str, Any]


def check_channel(channel: str) -> None:
    if not isinstance(channel, str) or not CHANNEL_PATTERN.match(channel):
        raise InvalidArgumentError("channel", f"must be 1-200 characters of A-Z a-z 0-9 : _ - . @ /, got {channel!r}")


def with_session_hint(url: str, session_id: str) -> str:
    """Adds ``sid=<session id>``: the shipped nginx and HAProxy configs hash on it, so a resuming
    client lands on the node that still holds its session. The edge ignores it."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "sid"]
    query.append(("sid", session_id))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, urllib.parse.urlencode(query), ""))


@dataclass(eq=False)
class Pending:
    on_reply: Callable[[Frame], None]
    on_lost: Callable[[SwitchyardError], None]


@dataclass(eq=False)
class Attempt:
    ws: ClientConnection
    url: str
    token: str
    hello: Frame | None = None
    auth_error: str | None = None
    auth_error_text: str = ""
    auth_expired: bool = False
    reconnect_after: float | None = None
    aborted: str | None = None




def check_urls(url: str | Sequence[str]) -> list[str]:
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise InvalidArgumentError("url", "must list at least one ws:// URL")
    for u in urls:
        if not isinstance(u, str) or not re.match(r"^wss?://", u):
            raise InvalidArgumentError("url", f"must start with ws:// or wss://, got {u!r}")
    return urls


def check_seconds(name: str, value: float, *, zero_ok: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and (value >= 0 if zero_ok else value > 0)
    if not ok:
        raise InvalidArgumentError(name, f"must be a {'non-negative' if zero_ok else 'positive'} number of seconds, got {value!r}")


def settle(future: asyncio.Future[Frame], outcome: Frame | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
