"""Contract v1.1 (section 9) features on the server side: presence, resume with the client's own
positions, and a refresh that removes rights. Marked ``needs_v11``: they fail against a server
that does not have these yet."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Cluster, abroadcast, eventually, mint, unique

import switchyard
from switchyard import SessionState

pytestmark = [pytest.mark.integration, pytest.mark.needs_v11]

WAIT = 30.0


async def test_presence_join_leave_and_query_across_nodes(cluster: Cluster) -> None:
    room = unique("room:py")
    claims = {"channels": ["room:*"]}
    async with switchyard.connect(cluster.a, token=mint(cluster.secret, "alice", info={"name": "Alice"}, **claims)) as alice:
        watching = await alice.subscribe(room)
        changes = watching.presence_changes()
        async with switchyard.connect(cluster.b, token=mint(cluster.secret, "bob", **claims)) as bob:
            bobs = await bob.subscribe(room)
            async with asyncio.timeout(WAIT):
                # Whether a subscriber hears its own join is not the point here: bob's must come.
                while (joined := await anext(changes)).user_id != "bob":
                    assert joined == switchyard.PresenceChange("join", room, "alice", {"name": "Alice"})
            assert joined == switchyard.PresenceChange("join", room, "bob", None)
            now = await alice.presence(room)
            assert (now.channel, now.count, now.connections, now.truncated) == (room, 2, 2, False)
            assert {u.user_id: u.info for u in now.users} == {"alice": {"name": "Alice"}, "bob": None}
            await bobs.unsubscribe()
            async with asyncio.timeout(WAIT):
                left = await anext(changes)
            assert (left.kind, left.user_id) == ("leave", "bob")
        assert (await watching.presence()).count == 1


async def test_presence_is_forbidden_without_the_right_to_subscribe(cluster: Cluster) -> None:
    async with switchyard.connect(cluster.a, token=mint(cluster.secret, "outsider", channels=["dash*"])) as client:
        with pytest.raises(switchyard.ForbiddenError):
            await client.presence(unique("room:closed"))


async def test_resume_with_positions_replays_from_the_clients_own_seq(cluster: Cluster) -> None:
    channel = unique("dash-pos")
    token = mint(cluster.secret, "positions", channels=["dash*"])
    async with switchyard.connect(cluster.a, token=token) as first:
        sub = await first.subscribe(channel)
        for i in range(1, 6):
            await abroadcast(cluster, cluster.a, channel, {"i": i})
        async with asyncio.timeout(WAIT):
            assert [(await anext(sub)).seq for _ in range(5)] == [1, 2, 3, 4, 5]
        session_id = first.session_id
    assert session_id is not None
    # The server recorded 5 as delivered; the client says it only kept up to 3.
    later = switchyard.Client(cluster.b, token=token, session=SessionState(session_id, {channel: 3}))
    resumed = later.subscribe(channel)
    try:
        await later.start()
        async with asyncio.timeout(WAIT):
            got = [(await anext(resumed)).seq for _ in range(2)]
        assert got == [4, 5]
        # The server's own replay brought them: the client did not have to ask for a fill.
        assert later.stats.fills == 0 and later.stats.resumes == 1
    finally:
        await later.close()


async def test_a_refresh_that_removes_rights_ends_the_subscription(cluster: Cluster) -> None:
    channel = unique("dash-revoke")
    tokens = iter([mint(cluster.secret, "revoked", ttl=4, channels=["dash*"]), mint(cluster.secret, "revoked", ttl=600, channels=["other:*"])])
    async with switchyard.connect(cluster.a, token=lambda: next(tokens), refresh_margin=2.0) as client:
        sub = await client.subscribe(channel)
        await eventually(lambda: client.stats.refreshes >= 1, WAIT, "the refresh")
        with pytest.raises(switchyard.ForbiddenError):
            async with asyncio.timeout(WAIT):
                await anext(sub)
        assert client.state == "connected"
