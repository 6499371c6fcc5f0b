"""The values the client hands to the application. Frozen dataclasses: safe to keep and share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ConnectionStatus = Literal["idle", "connecting", "connected", "reconnecting", "failed", "closed"]
GapKind = Literal["gap", "reset", "overflow"]

TERMINAL_JOB_EVENTS = frozenset({"job.completed", "job.failed", "job.cancelled"})


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a channel, handed over once and in ``seq`` order."""

    channel: str
    #: Per-channel sequence number; None for a ``degraded`` event (published while the server's
    #: broker was unreachable: it has no seq and is not in history).
    seq: int | None
    event: str
    data: Any
    #: ISO 8601, when the event was published.
    timestamp: str
    degraded: bool = False
    #: How many earlier events of the same coalescing key this one replaces (slow clients).
    coalesced: int = 0
    #: True for a job's final state made from its status record because its events were no
    #: longer in history (``watch_job`` only); ``data`` is then the status of ``GET /jobs/:id``.
    from_status: bool = False


@dataclass(frozen=True, slots=True)
class Gap:
    """Events lost on a channel. ``gap``: the server no longer held them; ``reset``: the channel's
    history was reset and seqs started over; ``overflow``: the subscription was not read and its
    buffer (``max_buffered_events``) overflowed."""

    kind: GapKind
    channel: str
    #: The last seq handed over before the gap; None when none had been.
    last_seq: int | None
    #: The channel's latest seq according to the server (for ``overflow``: the seq dropped).
    seq: int
    epoch: str | None = None


@dataclass(frozen=True, slots=True)
class PublishResult:
    #: The event's seq; None when the server's broker was unreachable (``degraded``).
    seq: int | None
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class DirectMessage:
    #: The sender's connection id: reply with ``client.direct(msg.sender, ...)``.
    sender: str
    user_id: str
    data: Any


@dataclass(frozen=True, slots=True)
class PresenceUser:
    user_id: str
    connections: int
    info: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Presence:
    """Who is on a presence channel, cluster-wide (``presence_result``)."""

    channel: str
    #: Users.
    count: int
    connections: int
    users: tuple[PresenceUser, ...]
    #: More users exist than ``users`` holds (``PRESENCE_MAX_USERS``).
    truncated: bool

    @staticmethod
    def from_frame(channel: str, frame: dict[str, Any]) -> Presence:
        """From a ``presence_result`` frame (or the body of ``GET /presence/<channel>``)."""
        users = tuple(
            PresenceUser(str(u.get("user_id")), int(u.get("connections", 0)), u.get("info") if isinstance(u.get("info"), dict) else None)
            for u in frame.get("users", [])
            if isinstance(u, dict)
        )
        return Presence(channel, int(frame.get("count", 0)), int(frame.get("connections", 0)), users, frame.get("truncated") is True)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A user's first subscription to the channel anywhere in the cluster started (``join``) or
    its last one ended (``leave``). Not numbered, not replayed."""

    kind: Literal["join", "leave"]
    channel: str
    user_id: str
    info: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A job channel's status as of ``seq`` (the server's ``snapshot`` frame)."""

    channel: str
    seq: int
    epoch: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class SessionState:
    """What resuming a session needs: keep it (e.g. on disk) and pass it to ``connect(...,
    session=...)`` to pick up, exactly once, where a previous client stopped."""

    session_id: str
    #: Last seq handed over, per channel.
    positions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ClientStats:
    """Counters since the client was made."""

    #: Successful connections after the first.
    reconnects: int = 0
    #: Connections where the server restored the session (``resumed: true``).
    resumes: int = 0
    #: Events dropped because they had been handed over already.
    duplicates_dropped: int = 0
    #: Replays the client asked for itself to fill a hole (``subscribe`` with ``since``).
    fills: int = 0
    #: Gaps reported (recovered: false, resets, overflows).
    gaps: int = 0
    #: Tokens sent on a live connection (refreshes).
    refreshes: int = 0
