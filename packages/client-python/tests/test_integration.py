"""The client against real edges on a real Redis (see conftest.py for how they are started)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from conftest import Cluster, abroadcast, eventually, mint, unique

import switchyard
from switchyard import ReconnectOptions, SessionState

pytestmark = pytest.mark.integration

# Test-speed reconnects; bounded waits are generous: the machine is shared and busy.
FAST = ReconnectOptions(initial_delay=0.05, max_delay=0.5)
WAIT = 30.0


def rights(cluster: Cluster, sub: str, ttl: float = 600, **claims: object) -> str:
    return mint(cluster.secret, sub, ttl, channels=["dash*", "room:*"], publish=["dash*", "room:*"], **claims)


async def test_subscribe_publish_round_trip_across_nodes(cluster: Cluster) -> None:
    channel = unique("dashboard")
    async with switchyard.connect(cluster.a, token=rights(cluster, "alice")) as alice, switchyard.connect(cluster.b, token=rights(cluster, "bob")) as bob:
        assert alice.state == "connected" and alice.user_id == "alice" and alice.session_id
        mine = await alice.subscribe(channel)
        theirs = await bob.subscribe(channel)
        assert mine.seq == 0
        first = await alice.publish(channel, {"ok": True}, event="status")
        second = await bob.publish(channel, {"n": 2})
        assert (first.seq, second.seq) == (1, 2)
        async with asyncio.timeout(WAIT):
            got = [await anext(mine), await anext(mine)]
            seen_by_bob = [await anext(theirs), await anext(theirs)]
        assert [(e.channel, e.seq, e.event, e.data) for e in got] == [(channel, 1, "status", {"ok": True}), (channel, 2, "message", {"n": 2})]
        assert [e.seq for e in seen_by_bob] == [1, 2]
        assert got[0].timestamp.endswith("Z")
        # The documented shape: `async for` over a subscription.
        received = []
        await abroadcast(cluster, cluster.b, channel, {"n": 3})
        async with asyncio.timeout(WAIT):
            async for ev in mine:
                received.append(ev)
                break
        assert [(e.seq, e.data) for e in received] == [(3, {"n": 3})]
        await mine.unsubscribe()
        with pytest.raises(StopAsyncIteration):
            await anext(mine)


async def test_direct_to_a_connection_and_to_nobody(cluster: Cluster) -> None:
    # connect() may also be awaited; then the caller closes.
    bob = await switchyard.connect(cluster.a, token=rights(cluster, "bob"))
    try:
        async with switchyard.connect(cluster.a, token=rights(cluster, "alice")) as alice:
            assert bob.connection_id is not None
            await alice.direct(bob.connection_id, {"hello": 1})
            async with asyncio.timeout(WAIT):
                msg = await anext(bob.directs())
            assert (msg.sender, msg.user_id, msg.data) == (alice.connection_id, "alice", {"hello": 1})
            with pytest.raises(switchyard.NotFoundError) as refused:
                await alice.direct("c_nobody", {"x": 1})
            assert refused.value.server_code == "not_found" and refused.value.code == "server_error"
    finally:
        await bob.close()
    assert bob.state == "closed"
    with pytest.raises(switchyard.ClientClosedError):
        await bob.publish("dashboard", {"late": True})


async def test_token_provider_refreshes_on_the_live_connection(cluster: Cluster) -> None:
    issued: list[str] = []

    async def provider() -> str:
        # Short-lived tokens: each must be replaced on the live connection before it expires.
        token = rights(cluster, "refresher", ttl=4)
        issued.append(token)
        return token

    channel = unique("dash-refresh")
    async with switchyard.connect(cluster.a, token=provider, refresh_margin=2.0, reconnect=FAST) as client:
        first_connection = client.connection_id
        sub = await client.subscribe(channel)
        await eventually(lambda: client.stats.refreshes >= 2, WAIT, "two refreshes")
        # Still the same connection: refreshed in place, never dropped and reconnected.
        assert client.connection_id == first_connection and client.stats.reconnects == 0
        assert len(issued) >= 3
        await client.publish(channel, {"after": "refresh"})
        async with asyncio.timeout(WAIT):
            assert (await anext(sub)).data == {"after": "refresh"}

    calls = 0

    def sync_provider() -> str:
        nonlocal calls
        calls += 1
        return rights(cluster, "refresher-sync")

    async with switchyard.connect(cluster.a, token=sync_provider) as client:
        assert client.user_id == "refresher-sync" and calls == 1


async def test_reconnect_resumes_exactly_once_after_kill_9(cluster: Cluster) -> None:
    channel = unique("dash-kill")
    # Fewer events go by while the client is away than the edges' history holds: a resume must
    # recover every one of them (more would be a gap, tested below).
    before, during, after = 10, cluster.history_size - 5, 10
    total = before + during + after
    client = switchyard.Client([cluster.victim, cluster.b], token=rights(cluster, "survivor"), reconnect=FAST, ping_interval=1.0)
    await client.start()
    victim_node = client.node_id
    sub = await client.subscribe(channel)
    received: list[int] = []

    async def read_all() -> None:
        async for ev in sub:
            assert ev.seq is not None
            received.append(ev.seq)
            if ev.seq == total:
                return

    reader = asyncio.create_task(read_all())
    try:
        async with asyncio.timeout(90):
            for i in range(before):
                await abroadcast(cluster, cluster.b, channel, {"i": i})
            await eventually(lambda: len(received) >= before, WAIT, "the first events")
            os.kill(cluster.victim_pid, signal.SIGKILL)
            for i in range(during):
                await abroadcast(cluster, cluster.b, channel, {"i": before + i})
            await eventually(lambda: client.state == "connected" and client.node_id != victim_node, 60, "a reconnect to the surviving node")
            for i in range(after):
                await abroadcast(cluster, cluster.b, channel, {"i": before + during + i})
            await reader
        assert received == list(range(1, total + 1)), "every event once, in order, across the kill"
        assert client.stats.reconnects >= 1 and client.stats.resumes >= 1
        assert client.last_seq(channel) == total
    finally:
        reader.cancel()
        await client.close()


async def test_a_draining_node_sends_its_clients_elsewhere_without_losing_an_event(cluster: Cluster) -> None:
    channel = unique("dash-drain")
    states: list[str] = []
    client = switchyard.Client([cluster.drain, cluster.b], token=rights(cluster, "drained"), reconnect=FAST)
    await client.start()
    drained_node = client.node_id
    sub = await client.subscribe(channel)
    try:
        async with asyncio.timeout(90):
            for i in range(5):
                await abroadcast(cluster, cluster.b, channel, {"i": i})
            os.kill(cluster.drain_pid, signal.SIGTERM)
            # The node says `reconnect` and closes 1012: the client moves on, not counted as a failure.
            await eventually(lambda: states.append(client.state) or (client.state == "connected" and client.node_id != drained_node), 60, "a move to the other node")
            for i in range(5, 10):
                await abroadcast(cluster, cluster.b, channel, {"i": i})
            got = [(await anext(sub)).seq for _ in range(10)]
        assert got == list(range(1, 11))
        assert "reconnecting" in states and client.stats.resumes >= 1
    finally:
        await client.close()


async def test_gap_when_history_no_longer_holds_the_events(cluster: Cluster) -> None:
    channel = unique("dash-gap")
    n = cluster.history_size + 10
    for i in range(1, n + 1):
        await abroadcast(cluster, cluster.a, channel, {"i": i})
    async with switchyard.connect(cluster.b, token=rights(cluster, "gappy")) as client:
        sub = client.subscribe(channel, since=1)
        with pytest.raises(switchyard.GapError) as raised:
            async with asyncio.timeout(WAIT):
                await anext(sub)
        gap = raised.value.gap
        assert raised.value.code == "gap" and (gap.kind, gap.channel, gap.last_seq, gap.seq) == ("gap", channel, 1, n)
        assert sub.recovered is False and sub.gaps == [gap]
        # The subscription goes on with what the server still has, in order.
        async with asyncio.timeout(WAIT):
            rest = [(await anext(sub)).seq for _ in range(cluster.history_size)]
        assert rest == list(range(n - cluster.history_size + 1, n + 1))


async def test_gap_on_resume_from_a_saved_session(cluster: Cluster) -> None:
    channel = unique("dash-saved")
    token = rights(cluster, "saver")
    async with switchyard.connect(cluster.a, token=token) as first:
        sub = await first.subscribe(channel)
        await first.publish(channel, {"i": 1})
        async with asyncio.timeout(WAIT):
            assert (await anext(sub)).seq == 1
        saved = first.session_state
    assert saved is not None and saved.positions == {channel: 1}
    for i in range(2, cluster.history_size + 12):
        await abroadcast(cluster, cluster.a, channel, {"i": i})
    later = switchyard.Client(cluster.b, token=token, session=SessionState(saved.session_id, dict(saved.positions)))
    resumed_sub = later.subscribe(channel)
    try:
        await later.start()
        assert later.session_id == saved.session_id and later.stats.resumes == 1
        with pytest.raises(switchyard.GapError) as raised:
            async with asyncio.timeout(WAIT):
                await anext(resumed_sub)
        assert raised.value.gap.kind == "gap" and raised.value.gap.last_seq == 1
    finally:
        await later.close()


async def test_submit_and_watch_a_job_to_completion(cluster: Cluster) -> None:
    async with switchyard.connect(cluster.a, token=mint(cluster.secret, "scientist")) as client:
        job_id = await client.submit_job(sample_id="S1", params={"stages": 3, "stage_ms": 50})
        events = []
        async with asyncio.timeout(60):
            async for ev in client.watch_job(job_id):
                events.append(ev)
        names = [e.event for e in events]
        assert names[0] == "job.queued" and names[-1] == "job.completed", names
        assert "job.started" in names and names.count("job.progress") >= 3
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert all(e.channel == f"job:{job_id}" for e in events)
        assert events[-1].data["result"]["sample_id"] == "S1"
        status = await client.get_job(job_id)
        assert status["state"] == "completed" and status["owner"] == "scientist"
        # Watching a finished job replays it and ends again.
        async with asyncio.timeout(WAIT):
            again = [ev.event async for ev in client.watch_job(job_id)]
        assert again[-1] == "job.completed"
        # A job failing for good ends the watch with job.failed.
        failing = await client.submit_job(params={"stages": 1, "stage_ms": 10, "fail": "permanent"})
        async with asyncio.timeout(60):
            last = [ev async for ev in client.watch_job(failing)][-1]
        assert last.event == "job.failed" and last.data["class"] == "permanent"


async def test_watching_a_job_whose_first_events_left_the_history(cluster: Cluster) -> None:
    async with switchyard.connect(cluster.a, token=mint(cluster.secret, "scientist")) as client:
        stages = cluster.history_size + 10
        job_id = await client.submit_job(params={"stages": stages, "stage_ms": 1})

        async def finished() -> bool:
            return (await client.get_job(job_id)).get("state") == "completed"

        await eventually(finished, 60, "the job to complete")
        async with asyncio.timeout(WAIT):
            events = [ev async for ev in client.watch_job(job_id)]
        # What the history still holds, in order, ending with the real final event.
        assert len(events) == cluster.history_size
        assert [e.seq for e in events] == list(range(events[0].seq or 0, (events[0].seq or 0) + len(events)))
        assert events[-1].event == "job.completed" and not events[-1].from_status


async def test_typed_errors(cluster: Cluster) -> None:
    wrong = mint("another-secret-that-is-long-enough-for-hs256", "mallory")
    started = time.monotonic()
    with pytest.raises(switchyard.AuthError) as refused:
        async with switchyard.connect(cluster.a, token=wrong):
            pass
    assert refused.value.code == "auth_failed" and refused.value.reason == "bad_signature"
    assert time.monotonic() - started < WAIT, "a refused token is not retried"

    async with switchyard.connect(cluster.a, token=rights(cluster, "limited")) as client:
        with pytest.raises(switchyard.ForbiddenError) as forbidden:
            await client.subscribe("secret")
        assert forbidden.value.server_code == "forbidden"
        sub = client.subscribe("secret-too")
        with pytest.raises(switchyard.ForbiddenError):
            async with asyncio.timeout(WAIT):
                await anext(sub)
        with pytest.raises(switchyard.ForbiddenError):
            await client.publish("secret", {"x": 1})
        with pytest.raises(switchyard.InvalidArgumentError) as bad:
            client.subscribe("no spaces allowed")
        assert bad.value.field == "channel"
        with pytest.raises(switchyard.ServerError) as missing:
            await client.get_job("no-such-job")
        assert missing.value.status == 404
        # The connection is unharmed by all of it.
        assert client.state == "connected" and await client.ping() >= 0

    with pytest.raises(switchyard.AuthError):
        async with switchyard.connect(cluster.a, token=mint(cluster.secret, "late", ttl=-120)):
            pass
    with pytest.raises(switchyard.InvalidArgumentError):
        switchyard.connect("http://not-a-websocket", token="x")
    with pytest.raises(switchyard.ReconnectFailedError):
        await switchyard.Client("ws://127.0.0.1:9/ws", token="x.y.z", reconnect=FAST).start(timeout=2.0)
