"""Shared pieces of the suite. The integration tests run against real edges on a real Redis,
started by test/clients/python-client.test.ts, which passes their addresses in the environment:

- SWITCHYARD_URLS: comma list of two edges' ws:// URLs (node A runs jobs in process)
- SWITCHYARD_VICTIM_URL, SWITCHYARD_VICTIM_PID: a third edge the suite may kill -9
- SWITCHYARD_DRAIN_URL, SWITCHYARD_DRAIN_PID: a fourth edge the suite may drain (SIGTERM)
- SWITCHYARD_JWT_SECRET: the edges' HS256 secret, to mint tokens
- SWITCHYARD_BROADCAST_KEY: the edges' BROADCAST_API_KEY
- SWITCHYARD_HISTORY_SIZE: the edges' HISTORY_SIZE
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    a: str
    b: str
    victim: str
    victim_pid: int
    drain: str
    drain_pid: int
    secret: str
    broadcast_key: str
    history_size: int

    @staticmethod
    def http(ws_url: str) -> str:
        return ws_url.replace("ws://", "http://").rsplit("/", 1)[0]


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    urls = os.environ.get("SWITCHYARD_URLS")
    if not urls:
        pytest.skip("no cluster: run through `pnpm exec vitest run test/clients/python-client.test.ts`, which starts one")
    a, b = urls.split(",")[:2]
    return Cluster(
        a=a,
        b=b,
        victim=os.environ["SWITCHYARD_VICTIM_URL"],
        victim_pid=int(os.environ["SWITCHYARD_VICTIM_PID"]),
        drain=os.environ["SWITCHYARD_DRAIN_URL"],
        drain_pid=int(os.environ["SWITCHYARD_DRAIN_PID"]),
        secret=os.environ["SWITCHYARD_JWT_SECRET"],
        broadcast_key=os.environ["SWITCHYARD_BROADCAST_KEY"],
        history_size=int(os.environ.get("SWITCHYARD_HISTORY_SIZE", "1000")),
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint(secret: str, sub: str, ttl: float = 600, **claims: Any) -> str:
    """An HS256 JWT, made with the standard library."""
    now = time.time()
    payload = {"sub": sub, "iat": int(now), "exp": int(now + ttl), **claims}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def broadcast(cluster: Cluster, ws_url: str, channel: str, data: Any, event: str = "tick") -> int:
    """POST /broadcast with the broadcast key; returns the event's seq."""
    req = urllib.request.Request(
        f"{Cluster.http(ws_url)}/broadcast",
        data=json.dumps({"channel": channel, "event": event, "data": data}).encode(),
        headers={"Authorization": f"Bearer {cluster.broadcast_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        seq = json.loads(res.read())["seq"]
        assert isinstance(seq, int)
        return seq


async def abroadcast(cluster: Cluster, ws_url: str, channel: str, data: Any, event: str = "tick") -> int:
    return await asyncio.to_thread(broadcast, cluster, ws_url, channel, data, event)


async def eventually(check: Callable[[], T | None] | Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Polls ``check`` until it returns something other than None/False, within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value is not None and value is not False:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"
