"""The client's channels: which it wants, where each stands, and every subscribe, resume, replay
and fill that keeps each one exact (each event once, in seq order) across connections."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._backoff import full_jitter
from ._errors import ClientClosedError, InvalidArgumentError, RequestTimeoutError, SwitchyardError, server_error
from ._stream import ChannelStream
from ._subscription import OnGap, Subscription
from ._types import Event, Gap, PresenceChange, Snapshot
from ._wire import Frame
from ._wire import Pending as _Pending
from ._wire import check_channel as _check_channel

if TYPE_CHECKING:
    from ._client import Client

log = logging.getLogger("switchyard")

#: Retries of a subscribe the server answered ``unavailable`` (or did not answer), per connection.
MAX_SUBSCRIBE_RETRIES = 10
#: How long an early event waits for the events before it before a replay is asked for.
GAP_GRACE_S = 0.5


@dataclass(eq=False)
class _Channel:
    name: str
    stream: ChannelStream
    initial_since: int | None
    #: Extra subscribe fields (``snapshot: false`` for job watches).
    extra: dict[str, Any]
    subs: set[Subscription] = field(default_factory=set)
    #: pending (wanted, not sent) | subscribing | resuming (the server restores it) | active
    status: str = "pending"
    #: Confirmed on the previous connection, so a resumed session should bring it back.
    was_active: bool = False
    retries: int = 0
    fill_ref: str | None = None
    timer: asyncio.TimerHandle | None = None
    gap_timer: asyncio.TimerHandle | None = None
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    #: What arrived for a channel resumed from a SessionState before the application subscribed.
    backlog: list[Event | Gap] = field(default_factory=list)

    def cancel_timers(self) -> None:
        for t in (self.timer, self.gap_timer):
            if t is not None:
                t.cancel()
        self.timer = self.gap_timer = None


class ChannelRouter:
    def __init__(self, client: Client) -> None:
        self._c = client
        self.channels: dict[str, _Channel] = {}

    def positions(self) -> dict[str, int]:
        """The last seq handed over, per channel."""
        return {name: ch.stream.last for name, ch in self.channels.items() if ch.stream.last is not None}

    def seed(self, positions: dict[str, int]) -> None:
        """Channels of a session resumed from a SessionState: wanted from the first connection
        on (the server restores them), their events kept until the application subscribes."""
        for name, seq in positions.items():
            _check_channel(name)
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
                raise InvalidArgumentError(f"session.positions[{name!r}]", f"must be a non-negative integer, got {seq!r}")
            self.channels[name] = _Channel(name, ChannelStream(name, seq), seq, {}, was_active=True)

    def _feed(self, ch: _Channel, item: Event | Gap) -> None:
        if ch.subs:
            for sub in list(ch.subs):
                sub._feed(item)
        elif len(ch.backlog) < self._c._max_buffered:
            ch.backlog.append(item)

    def on_connected(self, resumed: bool) -> None:
        for ch in list(self.channels.values()):
            if resumed and ch.was_active:
                self.await_resume(ch)
            else:
                self.send_subscribe(ch)

    def on_disconnected(self) -> None:
        """Subscriptions stay wanted and come back on the next connection."""
        for ch in self.channels.values():
            ch.cancel_timers()
            if ch.status in ("active", "resuming"):
                ch.was_active = True
            ch.status = "pending"
            ch.fill_ref = None
            ch.confirmed.clear()

    def end_all(self, error: SwitchyardError | None) -> None:
        for ch in list(self.channels.values()):
            ch.cancel_timers()
            for sub in list(ch.subs):
                sub._end(error)
        self.channels.clear()

    def on_snapshot(self, frame: Frame) -> None:
        ch = self.channels.get(str(frame.get("channel")))
        if ch is not None and isinstance(frame.get("seq"), int):
            snap = Snapshot(ch.name, frame["seq"], frame.get("epoch"), frame.get("data"))
            for sub in ch.subs:
                sub.snapshot = snap

    def on_presence(self, kind: str, frame: Frame) -> None:
        ch = self.channels.get(str(frame.get("channel")))
        if ch is None or kind not in ("join", "leave"):
            return
        info = frame.get("info")
        change = PresenceChange("join" if kind == "join" else "leave", ch.name, str(frame.get("user_id")), info if isinstance(info, dict) else None)
        for sub in ch.subs:
            sub._feed_presence(change)

    def on_forbidden(self, channel: str) -> None:
        """A refreshed token no longer allows this channel (section 9): it has ended."""
        ch = self.channels.pop(channel, None)
        if ch is not None:
            self.drop_channel(ch, server_error("forbidden", f"subscription to {ch.name} ended: the refreshed token no longer allows it"))

    def pending_confirmation(self, channel: str) -> asyncio.Event | None:
        ch = self.channels.get(channel)
        return ch.confirmed if ch is not None and not ch.confirmed.is_set() else None

    def open(self, channel: str, *, since: int | None, on_gap: OnGap, extra: dict[str, Any]) -> Subscription:
        _check_channel(channel)
        if since is not None and (isinstance(since, bool) or not isinstance(since, int) or since < 0):
            raise InvalidArgumentError("since", f"must be a non-negative integer, got {since!r}")
        if on_gap not in ("raise", "ignore"):
            raise InvalidArgumentError("on_gap", f'must be "raise" or "ignore", got {on_gap!r}')
        if self._c._state in ("closed", "failed"):
            raise ClientClosedError(f"subscribe {channel}: the client is closed") from self._c._failure
        sub = Subscription(self._c, channel, on_gap=on_gap, max_buffered=self._c._max_buffered)
        ch = self.channels.get(channel)
        if ch is None:
            ch = _Channel(channel, ChannelStream(channel, since), since, extra)
            self.channels[channel] = ch
            ch.subs.add(sub)
            self.send_subscribe(ch)
        else:
            ch.subs.add(sub)
            if ch.status == "active":
                sub._confirm(ch.stream.last or 0, None)
            for item in ch.backlog:
                sub._feed(item)
            ch.backlog.clear()
        return sub

    async def release(self, sub: Subscription) -> None:
        ch = self.channels.get(sub.channel)
        if ch is None or sub not in ch.subs:
            return
        ch.subs.discard(sub)
        if ch.subs:
            return
        del self.channels[ch.name]
        ch.cancel_timers()
        if ch.status != "pending" and self._c._state == "connected":
            try:
                await self._c._request({"type": "unsubscribe", "channel": ch.name}, f"unsubscribe {ch.name}")
            except SwitchyardError:
                pass  # offline: the subscription went with the connection

    def send_subscribe(self, ch: _Channel) -> None:
        attempt = self._c._attempt
        if attempt is None or attempt.hello is None or self.channels.get(ch.name) is not ch:
            return
        ch.cancel_timers()
        since = ch.stream.resume_from if ch.stream.resume_from is not None else ch.initial_since
        ref = self._c._next_ref()
        ch.status = "subscribing"
        frame: Frame = {"type": "subscribe", "channel": ch.name, "ref": ref, **ch.extra}
        if since is not None:
            frame["since"] = since
        self._c._pending[ref] = _Pending(lambda f: self._on_subscribe_reply(ch, f, since), lambda e: None)
        ch.timer = asyncio.get_running_loop().call_later(self._c._request_timeout, self._subscribe_timed_out, ch, ref)
        self._c._write(frame)

    def _subscribe_timed_out(self, ch: _Channel, ref: str) -> None:
        if self._c._pending.pop(ref, None) is not None:
            self._retry_subscribe(ch, RequestTimeoutError(f"subscribe {ch.name}", self._c._request_timeout, "sent"))

    def _on_subscribe_reply(self, ch: _Channel, frame: Frame, since: int | None) -> None:
        if self.channels.get(ch.name) is not ch:
            return
        if frame["type"] == "subscription_result":
            self._on_result(ch, frame, since)
            return
        code, text = str(frame.get("code")), str(frame.get("error", ""))
        # bad_frame on a resumed connection: the server is still restoring this channel itself.
        if code == "bad_frame" and self._c._attempt is not None and self._c._attempt.hello is not None and self._c._attempt.hello.get("resumed") is True:
            self.await_resume(ch)
        elif code in ("unavailable", "rate_limited"):
            self._retry_subscribe(ch, server_error(code, f"subscribe {ch.name}: {text}"))
        else:
            self.channels.pop(ch.name, None)
            self.drop_channel(ch, server_error(code, f"subscribe {ch.name}: {text}"))

    def await_resume(self, ch: _Channel) -> None:
        """A resumed session restores this channel by itself; if it does not in time, subscribe."""
        ch.cancel_timers()
        ch.status = "resuming"
        ch.timer = asyncio.get_running_loop().call_later(self._c._request_timeout, self._send_if, ch, "resuming")

    def _send_if(self, ch: _Channel, status: str) -> None:
        if ch.status == status:
            self.send_subscribe(ch)

    def _retry_subscribe(self, ch: _Channel, cause: SwitchyardError) -> None:
        if self.channels.get(ch.name) is not ch:
            return
        ch.status = "pending"
        ch.retries += 1
        if ch.retries > MAX_SUBSCRIBE_RETRIES:
            self.channels.pop(ch.name, None)
            self.drop_channel(ch, cause)
            return
        ch.cancel_timers()
        ch.timer = asyncio.get_running_loop().call_later(full_jitter(ch.retries, self._c._reconnect), self._send_if, ch, "pending")

    def drop_channel(self, ch: _Channel, error: SwitchyardError) -> None:
        ch.cancel_timers()
        for sub in list(ch.subs):
            sub._end(error)

    def _on_result(self, ch: _Channel, frame: Frame, since: int | None) -> None:
        if not frame.get("success"):
            code = str(frame.get("error") or "unknown")
            if code == "unavailable":
                self._retry_subscribe(ch, server_error(code, f"subscribe {ch.name}: the server could not complete it"))
            else:
                self.channels.pop(ch.name, None)
                self.drop_channel(ch, server_error(code, f"subscribe {ch.name} refused: {code}"))
            return
        ch.cancel_timers()
        ch.status = "active"
        ch.was_active = True
        ch.retries = 0
        ch.confirmed.set()
        seq = frame.get("seq") if isinstance(frame.get("seq"), int) else 0
        assert isinstance(seq, int)
        recovered = frame.get("recovered") if isinstance(frame.get("recovered"), bool) else None
        gap, check = ch.stream.on_subscribed(seq, frame.get("epoch"), recovered, since)
        for sub in list(ch.subs):
            sub._confirm(seq, recovered)
        if gap is not None:
            self._c.stats.gaps += 1
            self._feed(ch, gap)
        if check:
            self._check_caught_up(ch, seq)

    def _check_caught_up(self, ch: _Channel, target: int) -> None:
        """After a resume the server replays from where *it* thinks we stood, right behind the
        subscription_result; a pong comes after all of it. Still behind by then: fill."""
        ref = self._c._next_ref()

        def check(_: Frame) -> None:
            if self.channels.get(ch.name) is ch and (ch.stream.last if ch.stream.last is not None else -1) < target:
                self._request_fill(ch)

        self._c._pending[ref] = _Pending(check, lambda e: None)
        self._c._write({"type": "ping", "ref": ref})

    def _request_fill(self, ch: _Channel) -> None:
        """Asks for a replay from the last seq handed over: ``subscribe`` again with ``since``."""
        since = ch.stream.resume_from
        if ch.fill_ref is not None or ch.status != "active" or since is None or self._c._attempt is None:
            return
        ref = self._c._next_ref()
        ch.fill_ref = ref

        def on_reply(frame: Frame) -> None:
            if ch.fill_ref == ref:
                ch.fill_ref = None
            if frame["type"] == "subscription_result" and self.channels.get(ch.name) is ch:
                self._on_result(ch, frame, since)

        self._c._pending[ref] = _Pending(on_reply, lambda e: None)
        self._c.stats.fills += 1
        log.debug("switchyard asking for a replay of %s after %s", ch.name, since)
        self._c._write({"type": "subscribe", "channel": ch.name, "since": since, "ref": ref, **ch.extra})

    def on_unsolicited_result(self, frame: Frame) -> None:
        """A subscription_result nobody asked for: a resumed session restoring a channel, or a
        reset notice."""
        ch = self.channels.get(str(frame.get("channel")))
        if ch is None:
            if frame.get("success"):
                self._c._write({"type": "unsubscribe", "channel": frame.get("channel")})
            return
        self._on_result(ch, frame, None)

    def on_event(self, frame: Frame) -> None:
        ch = self.channels.get(str(frame.get("channel")))
        if ch is None:
            return
        seq = frame.get("seq")
        coalesced = frame.get("coalesced")
        event = Event(
            ch.name,
            seq if isinstance(seq, int) else None,
            str(frame.get("event", "message")),
            frame.get("data"),
            str(frame.get("timestamp", "")),
            frame.get("degraded") is True,
            coalesced if isinstance(coalesced, int) and coalesced > 0 else 0,
        )
        out = ch.stream.push(event)
        if out.duplicate:
            self._c.stats.duplicates_dropped += 1
        for e in out.deliver:
            self._feed(ch, e)
        if out.need_fill and ch.gap_timer is None and ch.fill_ref is None:
            ch.gap_timer = asyncio.get_running_loop().call_later(GAP_GRACE_S, self._fill_if_waiting, ch)

    def _fill_if_waiting(self, ch: _Channel) -> None:
        ch.gap_timer = None
        if self.channels.get(ch.name) is ch and ch.stream.waiting:
            self._request_fill(ch)


