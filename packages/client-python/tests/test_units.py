"""Pure logic, no server: backoff, token expiry, per-channel ordering, option checks."""

from __future__ import annotations

import time

import pytest
from conftest import mint

import switchyard
from switchyard import Event, ReconnectOptions, decide_reconnect, full_jitter, token_expiry
from switchyard._backoff import CloseInfo, Fail, Retry
from switchyard._stream import ChannelStream
from switchyard._token import refresh_delay


def ev(seq: int | None, coalesced: int = 0) -> Event:
    return Event("c", seq, "e", {"seq": seq}, "t", coalesced=coalesced)


def test_full_jitter_is_capped_and_grows() -> None:
    o = ReconnectOptions(initial_delay=0.25, max_delay=15, factor=2)
    assert full_jitter(0, o, lambda: 1.0) == 0.25
    assert full_jitter(3, o, lambda: 1.0) == 2.0
    assert full_jitter(50, o, lambda: 1.0) == 15
    assert full_jitter(5000, o, lambda: 0.5) == 7.5
    assert full_jitter(2, o, lambda: 0.0) == 0.0


def test_close_codes_decide_the_next_attempt() -> None:
    o = ReconnectOptions()
    def d(close: CloseInfo, attempt: int = 0, refresh: bool = False) -> Retry | Fail:
        return decide_reconnect(close, attempt, o, can_refresh_token=refresh, rand=lambda: 1.0)
    assert d(CloseInfo(1012, reconnect_after=0.25)) == Retry(0.25, False)
    assert d(CloseInfo(1012)) == Retry(0.0, False)
    assert d(CloseInfo(1006), attempt=2) == Retry(1.0, True)
    assert d(CloseInfo(1001)) == Retry(0.25, True)
    assert d(CloseInfo(4008)) == Retry(1.0, True)
    assert d(CloseInfo(4010)) == Retry(0.0, True) and d(CloseInfo(4010), attempt=1) == Retry(0.5, True)
    assert isinstance(d(CloseInfo(4011)), Fail)
    assert d(CloseInfo(4001, auth_error="bad_signature")) == Fail("auth_failed", "bad_signature")
    assert d(CloseInfo(4009, auth_error="too_many_connections")) == Retry(0.25, True)
    assert d(CloseInfo(4001, auth_expired=True), refresh=True) == Retry(0.0, True)
    assert isinstance(d(CloseInfo(4001, auth_expired=True)), Fail)


def test_bad_options_are_refused_naming_the_field() -> None:
    with pytest.raises(switchyard.InvalidArgumentError, match="reconnect.max_delay"):
        ReconnectOptions(initial_delay=5, max_delay=1)
    with pytest.raises(switchyard.InvalidArgumentError, match="reconnect.factor"):
        ReconnectOptions(factor=0)
    with pytest.raises(switchyard.InvalidArgumentError, match='"token"'):
        switchyard.Client("ws://h/ws", token="")
    with pytest.raises(switchyard.InvalidArgumentError, match='"url"'):
        switchyard.Client([], token="t")
    with pytest.raises(switchyard.InvalidArgumentError, match='"request_timeout"'):
        switchyard.Client("ws://h/ws", token="t", request_timeout=0)


def test_token_expiry_and_refresh_timing() -> None:
    token = mint("s" * 32, "u", ttl=100)
    exp = token_expiry(token)
    assert exp is not None and abs(exp - (time.time() + 100)) < 2
    assert token_expiry("not-a-jwt") is None and token_expiry("a.!!!.c") is None
    assert refresh_delay(1000, 800, 30) == 170
    assert refresh_delay(1000, 900, 30) == 75  # a quarter of 100 s
    assert refresh_delay(1000, 992, 30) == 6  # a quarter of 8 s, not 30 s
    assert refresh_delay(1000, 1001, 30) == 0


def test_stream_drops_duplicates_and_fills_holes() -> None:
    s = ChannelStream("c")
    assert s.on_subscribed(seq=3, epoch="e1", recovered=None, since=None) == (None, False)
    assert s.push(ev(3)).duplicate
    assert [e.seq for e in s.push(ev(4)).deliver] == [4]
    early = s.push(ev(6))
    assert early.deliver == [] and early.need_fill and s.waiting
    assert [e.seq for e in s.push(ev(5)).deliver] == [5, 6]
    assert s.push(ev(5)).duplicate and s.last == 6
    # A coalesced event accounts for the seqs it replaced.
    assert [e.seq for e in s.push(ev(9, coalesced=2)).deliver] == [9]
    # Degraded events have no seq and pass as they come.
    assert [e.seq for e in s.push(ev(None)).deliver] == [None]


def test_stream_reports_gaps_and_resets() -> None:
    s = ChannelStream("c", since=2)
    gap, _ = s.on_subscribed(seq=50, epoch="e1", recovered=False, since=2)
    assert gap is not None and (gap.kind, gap.last_seq, gap.seq) == ("gap", 2, 50)
    assert [e.seq for e in s.push(ev(41)).deliver] == [41]
    reset, _ = s.on_subscribed(seq=1, epoch="e2", recovered=None, since=None)
    assert reset is not None and reset.kind == "reset" and reset.epoch == "e2"
    assert [e.seq for e in s.push(ev(1)).deliver] == [1]


def test_a_resume_ahead_of_the_client_asks_for_a_check() -> None:
    s = ChannelStream("c", since=3)
    assert s.on_subscribed(seq=3, epoch=None, recovered=None, since=3) == (None, False)
    assert s.on_subscribed(seq=7, epoch=None, recovered=None, since=None) == (None, True)


def test_an_unsolicited_recovered_false_is_checked_against_the_clients_own_position() -> None:
    s = ChannelStream("c", since=10)
    # The server resumed from its own (older) record and could not replay all of *that*...
    assert s.on_subscribed(seq=25, epoch=None, recovered=False, since=None) == (None, True)
    # ... but its replay still covers what this client misses: no gap.
    assert s.push(ev(6)).duplicate
    assert [e.seq for e in s.push(ev(11)).deliver] == [11]
    # A fill from the client's own position is authoritative.
    gap, _ = s.on_subscribed(seq=25, epoch=None, recovered=False, since=11)
    assert gap is not None and gap.last_seq == 11


async def test_token_providers_sync_async_and_with_the_reason() -> None:
    from switchyard._token import TokenSource

    reasons: list[str] = []

    def with_reason(reason: str) -> str:
        reasons.append(reason)
        return "a.b.c"

    async def no_args() -> str:
        return "d.e.f"

    assert await TokenSource(with_reason).get("refresh") == "a.b.c" and reasons == ["refresh"]
    assert await TokenSource(no_args).get() == "d.e.f"
    assert await TokenSource(lambda: "g.h.i").get() == "g.h.i"
    with pytest.raises(switchyard.ProviderError):
        await TokenSource(lambda: 42).get()
    with pytest.raises(switchyard.ProviderError):
        await TokenSource(lambda: 1 / 0).get()


async def test_a_subscription_that_is_not_read_reports_the_overflow_and_goes_on() -> None:
    from typing import Any, cast

    from switchyard import Gap, Subscription

    sub = Subscription(cast(Any, None), "c", on_gap="raise", max_buffered=3)
    sub._confirm(0, None)
    for seq in range(1, 7):
        sub._feed(ev(seq))
    assert [(await anext(sub)).seq for _ in range(3)] == [1, 2, 3]
    with pytest.raises(switchyard.GapError) as raised:
        await anext(sub)
    assert raised.value.gap == Gap("overflow", "c", None, 4) and sub.gaps == [raised.value.gap]
    # Read again, it takes new events once there is room.
    sub._feed(ev(7))
    assert (await anext(sub)).seq == 7
    quiet = Subscription(cast(Any, None), "c", on_gap="ignore", max_buffered=10)
    quiet._confirm(0, None)
    quiet._feed(Gap("gap", "c", 1, 9))
    quiet._feed(ev(9))
    assert (await anext(quiet)).seq == 9 and len(quiet.gaps) == 1
    quiet._end(switchyard.ForbiddenError("forbidden", "no longer allowed"))
    with pytest.raises(switchyard.ForbiddenError):
        await anext(quiet)
    with pytest.raises(switchyard.ForbiddenError):
        await anext(quiet)
