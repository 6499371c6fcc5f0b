"""Switchyard client for Python (asyncio, on the ``websockets`` library).

    async with switchyard.connect("ws://127.0.0.1:8765/ws", token=TOKEN) as client:
        async for ev in client.subscribe("dashboard"):   # ev.channel, ev.seq, ev.event, ev.data
            ...
        await client.publish("dashboard", {"ok": True}, event="status")
        async for ev in client.watch_job("job-1"): ...    # ends after the job's final event
"""

import logging

from ._backoff import ReconnectOptions, decide_reconnect, full_jitter
from ._client import Client
from ._connect import connect
from ._errors import (
    AuthError,
    AuthExpiredError,
    ClientClosedError,
    ConnectionLostError,
    ForbiddenError,
    GapError,
    InvalidArgumentError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    ReconnectFailedError,
    RequestTimeoutError,
    ServerError,
    SessionTakenOverError,
    SwitchyardError,
)
from ._subscription import JobWatch, Subscription
from ._token import TokenProvider, token_expiry
from ._types import TERMINAL_JOB_EVENTS, ClientStats, ConnectionStatus, DirectMessage, Event, Gap, Presence, PresenceChange, PresenceUser, PublishResult, SessionState, Snapshot

__version__ = "0.1.0"

# A library logs through its logger and leaves output to the application (no "lastResort" prints).
logging.getLogger("switchyard").addHandler(logging.NullHandler())

__all__ = [
    "TERMINAL_JOB_EVENTS",
    "AuthError",
    "AuthExpiredError",
    "Client",
    "ClientClosedError",
    "ClientStats",
    "ConnectionLostError",
    "ConnectionStatus",
    "DirectMessage",
    "Event",
    "ForbiddenError",
    "Gap",
    "GapError",
    "InvalidArgumentError",
    "JobWatch",
    "NotFoundError",
    "Presence",
    "PresenceChange",
    "PresenceUser",
    "ProviderError",
    "PublishResult",
    "RateLimitedError",
    "ReconnectFailedError",
    "ReconnectOptions",
    "RequestTimeoutError",
    "ServerError",
    "SessionState",
    "SessionTakenOverError",
    "Snapshot",
    "Subscription",
    "SwitchyardError",
    "TokenProvider",
    "connect",
    "decide_reconnect",
    "full_jitter",
    "token_expiry",
]
