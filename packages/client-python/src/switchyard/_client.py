"""The Switchyard client: one connection at a time, authenticated by first frame, that reconnects
by itself and keeps every channel exact — each event once, in seq order — across reconnects,
session resumes (with the client's own positions), replays and node failures.

Frames flow one way: socket → ``_on_frame`` (by ``ref`` first, then by type) → the channel's
``ChannelStream`` (dedupe, order, gaps) → its ``Subscription`` queues. Every task, timer and
socket this client starts is tracked here and stopped by ``close()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ._backoff import CLOSE_CLIENT_ABORT, CloseInfo, Fail, ReconnectOptions, decide_reconnect
from ._channels import ChannelRouter
from ._errors import (
    AuthError,
    AuthExpiredError,
    ClientClosedError,
    ConnectionLostError,
    InvalidArgumentError,
    ReconnectFailedError,
    RequestTimeoutError,
    SessionTakenOverError,
    SwitchyardError,
    server_error,
)
from ._http import http_base, http_json
from ._subscription import JobWatch, OnGap, Subscription
from ._token import DEFAULT_REFRESH_MARGIN_S, TokenProvider, TokenSource, refresh_delay, token_expiry
from ._types import ClientStats, ConnectionStatus, DirectMessage, Presence, PublishResult, SessionState
from ._wire import CHANNEL_PATTERN, Frame, check_channel, check_seconds, check_urls, with_session_hint
from ._wire import Attempt as _Attempt
from ._wire import Pending as _Pending
from ._wire import settle as _settle

log = logging.getLogger("switchyard")

DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Keepalive: a WebSocket ping after this long; no pong within as long again: the link is dead.
DEFAULT_PING_INTERVAL_S = 20.0
DEFAULT_MAX_BUFFERED_EVENTS = 10_000
#: Token refresh retried this often (s) when the provider fails, while time remains.
REFRESH_RETRY_S = 5.0
#: A ``reconnect`` frame not followed by a close within after_ms + this: leave on our own.
RECONNECT_GRACE_S = 2.0



class Client:
    """A Switchyard connection. Prefer ``switchyard.connect(...)``; see the package README.

    ``url`` is one node (``ws://host:8765/ws``) or several, tried in turn (the next one on every
    reconnect). ``token`` is a JWT or a callable (sync or async) returning one, asked on every
    (re)connect and before the token's ``exp`` to refresh it on the live connection.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        token: str | TokenProvider,
        http_url: str | None = None,
        reconnect: ReconnectOptions | bool = True,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_S,
        ping_interval: float | None = DEFAULT_PING_INTERVAL_S,
        resume: bool = True,
        session: SessionState | None = None,
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
    ) -> None:
        urls = check_urls(url)
        check_seconds("request_timeout", request_timeout)
        check_seconds("connect_timeout", connect_timeout)
        check_seconds("refresh_margin", refresh_margin, zero_ok=True)
        if isinstance(max_buffered_events, bool) or not isinstance(max_buffered_events, int) or max_buffered_events < 1:
            raise InvalidArgumentError("max_buffered_events", f"must be a positive integer, got {max_buffered_events!r}")
        if session is not None and not isinstance(session, SessionState):
            raise InvalidArgumentError("session", "must be a SessionState (from client.session_state)")
        self._urls = urls
        self._url_index = -1
        self._tokens = TokenSource(token)
        self._http_url = http_url
        self._reconnect = reconnect if isinstance(reconnect, ReconnectOptions) else ReconnectOptions(enabled=bool(reconnect))
        self._request_timeout = float(request_timeout)
        self._connect_timeout = float(connect_timeout)
        self._refresh_margin = float(refresh_margin)
        self._ping_interval = ping_interval
        self._resume = resume
        self._max_buffered = max_buffered_events
        self._session_id: str | None = session.session_id if session is not None else None
        self._state: ConnectionStatus = "idle"
        self._state_changed = asyncio.Event()
        self._failure: SwitchyardError | None = None
        self._last_error: SwitchyardError | None = None
        self._attempt: _Attempt | None = None
        self._failures = 0
        self._connected_once = False
        self._ref = 0
        self._router = ChannelRouter(self)
        if session is not None:
            self._router.seed(dict(session.positions))
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_task: asyncio.Task[None] | None = None
        self._conn_handles: list[asyncio.TimerHandle] = []
        self._refresh_task: asyncio.Task[None] | None = None
        self._directs: asyncio.Queue[DirectMessage] = asyncio.Queue(max_buffered_events)
        self._closing: asyncio.Future[None] | None = None
        #: Counters: reconnects, resumes, duplicates dropped, fills, gaps, refreshes.
        self.stats = ClientStats()
        #: Set from the server's auth_success.
        self.connection_id: str | None = None
        self.user_id: str | None = None
        self.node_id: str | None = None

    # ───────────────────────────── lifecycle ─────────────────────────────

    @property
    def state(self) -> ConnectionStatus:
        return self._state

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def session_state(self) -> SessionState | None:
        """The session id and the last seq handed over per channel: enough to resume exactly
        where this client stands, from another process (``connect(..., session=...)``)."""
        if self._session_id is None:
            return None
        return SessionState(self._session_id, self._positions())

    def last_seq(self, channel: str) -> int | None:
        ch = self._router.channels.get(channel)
        return ch.stream.last if ch is not None else None

    async def start(self, timeout: float | None = None) -> Client:
        """Starts connecting (if not yet) and waits for the first connection; raises AuthError for
        a refused token, or ReconnectFailedError when no node could be reached within ``timeout``
        (default ``connect_timeout``)."""
        if self._state in ("closed", "failed"):
            raise ClientClosedError("start: the client is closed; make a new one")
        if self._run_task is None:
            self._run_task = asyncio.get_running_loop().create_task(self._run(), name="switchyard-connection")
        limit = self._connect_timeout if timeout is None else timeout
        try:
            await self._wait_connected(limit)
        except RequestTimeoutError:
            last = self._last_error
            await self.close()
            raise ReconnectFailedError(f"could not connect to {', '.join(self._urls)} within {limit:g} s" + (f": {last}" if last else "")) from last
        except SwitchyardError:
            await self.close()
            raise
        return self

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Waits until the client is connected (again)."""
        await self._wait_connected(self._request_timeout if timeout is None else timeout)

    async def close(self) -> None:
        """Closes for good: no reconnect; requests in flight fail with ClientClosedError, and
        subscriptions end. Idempotent; concurrent callers share one close."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_future()
            try:
                await self._shutdown("closed", None)
            finally:
                self._closing.set_result(None)
        await asyncio.shield(self._closing)

    async def __aenter__(self) -> Client:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _set_state(self, state: ConnectionStatus) -> None:
        self._state = state
        log.debug("switchyard state %s", state)
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    async def _wait_connected(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._state == "connected":
                return
            if self._state == "failed":
                assert self._failure is not None
                raise self._failure
            if self._state == "closed":
                raise ClientClosedError("the client is closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RequestTimeoutError("connect", timeout, "queued")
            try:
                await asyncio.wait_for(self._state_changed.wait(), left)
            except TimeoutError:
                pass

    async def _shutdown(self, state: ConnectionStatus, error: SwitchyardError | None) -> None:
        current = asyncio.current_task()
        if self._run_task is not None and self._run_task is not current:
            self._run_task.cancel()
        attempt = self._attempt
        self._teardown_connection(ClientClosedError("the client is closed") if error is None else error)
        self._router.end_all(error)
        self._failure = error
        self._set_state(state)
        if attempt is not None:
            try:
                await asyncio.wait_for(attempt.ws.close(1000, "client closed"), 2.0)
            except (TimeoutError, ConnectionClosed, OSError):
                pass
        tasks = [t for t in self._tasks | {self._run_task} if t is not None and t is not current]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _fail(self, error: SwitchyardError) -> None:
        log.warning("switchyard connection failed for good: %s", error)
        self._spawn(self._shutdown("failed", error))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("switchyard background task failed", exc_info=task.exception())

    # ───────────────────────────── connecting ─────────────────────────────

    async def _run(self) -> None:
        while True:
            self._url_index = (self._url_index + 1) % len(self._urls)
            self._set_state("connecting")
            close = await self._connect_once(self._urls[self._url_index])
            decision = decide_reconnect(close, self._failures, self._reconnect, can_refresh_token=self._tokens.refreshable)
            if isinstance(decision, Fail):
                if decision.why == "auth_failed":
                    self._fail(AuthError(decision.detail, close.auth_error_text or close.reason))
                elif decision.why == "auth_expired":
                    self._fail(AuthExpiredError(decision.detail))
                else:
                    self._fail(SessionTakenOverError(decision.detail))
                return
            if not self._reconnect.enabled:
                self._fail(ReconnectFailedError(f"connection closed ({close.code} {close.reason}) and reconnecting is off (argument \"reconnect\")"))
                return
            if decision.counts_as_failure:
                self._failures += 1
            if self._failures > self._reconnect.max_attempts:
                self._fail(ReconnectFailedError(f"gave up after {self._reconnect.max_attempts:g} failed attempts (last close {close.code} {close.reason}); raise reconnect.max_attempts"))
                return
            self._set_state("reconnecting")
            log.debug("switchyard reconnecting in %.3f s after %s %s", decision.delay, close.code, close.reason)
            await asyncio.sleep(decision.delay)

    async def _connect_once(self, url: str) -> CloseInfo:
        try:
            token = await self._tokens.get()
        except SwitchyardError as err:
            self._last_error = err
            return CloseInfo(CLOSE_CLIENT_ABORT, "provider_failed")
        target = with_session_hint(url, self._session_id) if self._resume and self._session_id else url
        try:
            ws = await ws_connect(target, open_timeout=self._connect_timeout, ping_interval=self._ping_interval, ping_timeout=self._ping_interval, max_size=None, compression=None)
        except InvalidStatus as err:
            self._last_error = ConnectionLostError(f"{url}: {err}")
            return CloseInfo(1006, f"http_{err.response.status_code}")
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as err:
            self._last_error = ConnectionLostError(f"{url}: {err}")
            return CloseInfo(1006, str(err) or type(err).__name__)
        attempt = _Attempt(ws, url, token)
        self._attempt = attempt
        loop = asyncio.get_running_loop()
        self._conn_handles.append(loop.call_later(self._connect_timeout, self._abort_if_silent, attempt))
        code, reason = 1006, ""
        try:
            auth: Frame = {"type": "auth", "token": token}
            if self._resume and self._session_id is not None:
                auth["session_id"] = self._session_id
                positions = self._positions()
                if positions:
                    auth["positions"] = positions
            await ws.send(json.dumps(auth))
            async for raw in ws:
                if isinstance(raw, str):
                    self._on_raw(attempt, raw)
            code, reason = ws.close_code or 1006, ws.close_reason or ""
        except ConnectionClosed as err:
            rcvd = err.rcvd
            code, reason = (rcvd.code, rcvd.reason) if rcvd is not None else (1006, "connection lost")
        finally:
            if self._attempt is attempt:
                self._teardown_connection(None)
        if attempt.aborted is not None:
            code, reason = CLOSE_CLIENT_ABORT, attempt.aborted
        if attempt.hello is None and self._last_error is None:
            self._last_error = ConnectionLostError(f"{url}: closed {code} {reason} before authenticating")
        return CloseInfo(code, reason, attempt.auth_error, attempt.auth_error_text, attempt.auth_expired, attempt.reconnect_after)

    def _abort_if_silent(self, attempt: _Attempt) -> None:
        if self._attempt is attempt and attempt.hello is None:
            self._abort(attempt, "connect_timeout")

    def _abort(self, attempt: _Attempt, reason: str) -> None:
        attempt.aborted = reason
        self._spawn(attempt.ws.close(CLOSE_CLIENT_ABORT, reason))

    def _teardown_connection(self, error: SwitchyardError | None) -> None:
        """The connection is gone: requests in flight fail; subscriptions stay wanted."""
        self._attempt = None
        for h in self._conn_handles:
            h.cancel()
        self._conn_handles.clear()
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        pending, self._pending = self._pending, {}
        for p in pending.values():
            p.on_lost(error if error is not None else ConnectionLostError("the connection dropped before the reply"))
        self._router.on_disconnected()
        if self._state == "connected" and self._closing is None:
            self._set_state("reconnecting")

    def _positions(self) -> dict[str, int]:
        return self._router.positions()

    # ───────────────────────────── frames ─────────────────────────────

    def _on_raw(self, attempt: _Attempt, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("switchyard: unreadable frame from the server: %.200s", raw)
            return
        if isinstance(frame, dict) and isinstance(frame.get("type"), str):
            self._on_frame(attempt, frame)

    def _on_frame(self, attempt: _Attempt, frame: Frame) -> None:
        ref = frame.get("ref")
        if ref is not None:
            pending = self._pending.pop(str(ref), None)
            if pending is not None:
                pending.on_reply(frame)
                return
        kind = frame["type"]
        if kind == "auth_success":
            if attempt.hello is None:
                self._on_authenticated(attempt, frame)
        elif kind == "auth_error":
            attempt.auth_error = str(frame.get("code") or "unknown")
            attempt.auth_error_text = str(frame.get("error", ""))
        elif kind == "auth_expired":
            attempt.auth_expired = True
        elif kind == "event":
            self._router.on_event(frame)
        elif kind == "subscription_result":
            self._router.on_unsolicited_result(frame)
        elif kind == "snapshot":
            self._router.on_snapshot(frame)
        elif kind in ("join", "leave"):
            self._router.on_presence(kind, frame)
        elif kind == "direct":
            if self._directs.full():
                self._directs.get_nowait()
            self._directs.put_nowait(DirectMessage(str(frame.get("from")), str(frame.get("user_id")), frame.get("data")))
        elif kind == "unsubscribed" and frame.get("reason") == "forbidden":
            self._router.on_forbidden(str(frame.get("channel")))
        elif kind == "reconnect":
            after = frame.get("after_ms")
            attempt.reconnect_after = after / 1000 if isinstance(after, (int, float)) and after >= 0 else 0.0
            # The server closes with 1012 right after; should it not, leave on our own.
            self._conn_handles.append(asyncio.get_running_loop().call_later(attempt.reconnect_after + RECONNECT_GRACE_S, self._abort_if_current, attempt))
        elif kind == "error":
            log.warning("switchyard server error %s: %s", frame.get("code"), frame.get("error"))

    def _abort_if_current(self, attempt: _Attempt) -> None:
        if self._attempt is attempt:
            self._abort(attempt, "reconnect_requested")

    def _on_authenticated(self, attempt: _Attempt, hello: Frame) -> None:
        attempt.hello = hello
        self._last_error = None
        self._session_id = str(hello.get("session_id"))
        self.connection_id = str(hello.get("connection_id"))
        self.user_id = str(hello.get("user_id"))
        self.node_id = str(hello.get("node_id"))
        resumed = hello.get("resumed") is True
        if self._connected_once:
            self.stats.reconnects += 1
        self._connected_once = True
        if resumed:
            self.stats.resumes += 1
        self._set_state("connected")
        loop = asyncio.get_running_loop()
        self._conn_handles.append(loop.call_later(self._reconnect.stable_after, self._mark_stable, attempt))
        if self._tokens.refreshable:
            self._refresh_task = loop.create_task(self._refresh_loop(attempt))
        self._router.on_connected(resumed)

    def _mark_stable(self, attempt: _Attempt) -> None:
        if self._attempt is attempt:
            self._failures = 0

    def _next_ref(self) -> str:
        self._ref += 1
        return f"py{self._ref}"

    def _write(self, frame: Frame) -> bool:
        attempt = self._attempt
        if attempt is None or attempt.hello is None:
            return False
        self._spawn(self._send_quietly(attempt.ws, json.dumps(frame)))
        return True

    @staticmethod
    async def _send_quietly(ws: ClientConnection, text: str) -> None:
        try:
            await ws.send(text)
        except ConnectionClosed:
            pass  # the reader sees the close and handles it

    # ───────────────────────────── requests ─────────────────────────────

    async def _request(self, frame: Frame, what: str, timeout: float | None = None) -> Frame:
        """Sends a frame (once connected) and returns the reply carrying its ``ref``; an ``error``
        reply raises the matching ServerError."""
        limit = self._request_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            await self._wait_connected(limit)
        except RequestTimeoutError:
            raise RequestTimeoutError(what, limit, "queued") from None
        ref = self._next_ref()
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[ref] = _Pending(lambda f: _settle(future, f), lambda e: _settle(future, e))
        if not self._write({**frame, "ref": ref}):
            self._pending.pop(ref, None)
            raise ConnectionLostError(f"{what}: the connection dropped before it was sent")
        try:
            reply = await asyncio.wait_for(future, max(0.001, limit - (time.monotonic() - started)))
        except TimeoutError:
            self._pending.pop(ref, None)
            raise RequestTimeoutError(what, limit, "sent") from None
        except ConnectionLostError as err:
            raise ConnectionLostError(f"{what}: {err}") from None
        if reply["type"] == "error":
            raise server_error(str(reply.get("code")), f"{what}: {reply.get('error', '')}")
        return reply

    async def publish(self, channel: str, data: Any = None, *, event: str = "message", timeout: float | None = None) -> PublishResult:
        """Publishes an event (needs a publish right on the channel). A subscribe to the same
        channel still being confirmed is waited for first, so this client sees its own event."""
        check_channel(channel)
        if not isinstance(event, str) or not 1 <= len(event) <= 200:
            raise InvalidArgumentError("event", "must be a string of 1-200 characters")
        confirmed = self._router.pending_confirmation(channel)
        if confirmed is not None and self._state == "connected":
            try:
                await asyncio.wait_for(confirmed.wait(), self._request_timeout if timeout is None else timeout)
            except TimeoutError:
                pass
        reply = await self._request({"type": "publish", "channel": channel, "event": event, "data": data}, f"publish to {channel}", timeout)
        seq = reply.get("seq")
        return PublishResult(seq if isinstance(seq, int) else None, reply.get("degraded") is True)

    async def direct(self, to: str, data: Any, *, timeout: float | None = None) -> None:
        """Sends ``data`` to one connection (its id) or every connection of a user (``user:<id>``).
        Raises NotFoundError when no such connection is live."""
        if not isinstance(to, str) or to == "":
            raise InvalidArgumentError("to", 'must be a connection id or "user:<id>"')
        await self._request({"type": "direct", "to": to, "data": data}, f"direct to {to}", timeout)

    async def directs(self) -> AsyncIterator[DirectMessage]:
        """Direct messages sent to this client, as they come (an async iterator)."""
        while True:
            yield await self._directs.get()

    async def presence(self, channel: str, *, timeout: float | None = None) -> Presence:
        """Who is on a presence channel, cluster-wide (needs the right to subscribe to it)."""
        check_channel(channel)
        return Presence.from_frame(channel, await self._request({"type": "presence", "channel": channel}, f"presence of {channel}", timeout))

    async def ping(self, *, timeout: float | None = None) -> float:
        """Round trip to the server, in seconds."""
        started = time.monotonic()
        await self._request({"type": "ping"}, "ping", timeout)
        return time.monotonic() - started

    # ───────────────────────────── jobs ─────────────────────────────

    def _http(self) -> str:
        if self._http_url is not None:
            return self._http_url.rstrip("/")
        attempt = self._attempt
        return http_base(attempt.url if attempt is not None else self._urls[max(0, self._url_index)])

    async def _http_token(self) -> str:
        return self._tokens.last if self._tokens.last is not None else await self._tokens.get()

    async def submit_job(self, job: Mapping[str, Any] | None = None, **fields: Any) -> str:
        """Submits a job (``POST /jobs`` with this client's token); returns its id. Fields:
        ``job_id`` (optional), ``sample_id``, ``path_to_r1``, ``path_to_r2``, ``output_path``, ``params``."""
        body = {**(dict(job) if job is not None else {}), **fields}
        reply = await http_json("POST", f"{self._http()}/jobs", await self._http_token(), body, timeout=self._request_timeout)
        return str(reply["job_id"])

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """The job's status (``GET /jobs/:id``): state, attempts, progress, stage, result, error, ..."""
        reply = await http_json("GET", f"{self._http()}/jobs/{urllib.parse.quote(job_id, safe='')}", await self._http_token(), timeout=self._request_timeout)
        return dict(reply) if isinstance(reply, dict) else {}

    async def cancel_job(self, job_id: str, *, timeout: float | None = None) -> None:
        """Asks the server to stop a job this user owns; ``job.cancelled`` follows on its channel."""
        await self._request({"type": "cancel", "job_id": job_id}, f"cancel {job_id}", timeout)

    def watch_job(self, job_id: str) -> JobWatch:
        """The job's events from the first, ending after job.completed / job.failed / job.cancelled."""
        if not isinstance(job_id, str) or not CHANNEL_PATTERN.match(f"job:{job_id}"):
            raise InvalidArgumentError("job_id", f"must be 1-128 characters of A-Z a-z 0-9 : _ - . @ /, got {job_id!r}")
        return JobWatch(self, job_id)

    # ───────────────────────────── token refresh ─────────────────────────────

    async def _refresh_loop(self, attempt: _Attempt) -> None:
        token = attempt.token
        while self._attempt is attempt:
            exp = token_expiry(token)
            if exp is None:
                return
            await asyncio.sleep(refresh_delay(exp, time.time(), self._refresh_margin))
            try:
                fresh = await self._tokens.get("refresh")
            except SwitchyardError as err:
                left = exp - time.time()
                log.warning("switchyard token refresh failed (%s); %.1f s left", err, left)
                if left <= 1:
                    return
                await asyncio.sleep(min(REFRESH_RETRY_S, left / 2))
                continue
            try:
                reply = await self._request({"type": "auth", "token": fresh}, "token refresh")
            except SwitchyardError as err:
                log.warning("switchyard token refresh refused: %s", err)
                return
            if reply.get("type") == "auth_success":
                attempt.token = token = fresh
                self.stats.refreshes += 1
            else:
                return  # auth_error: the server closes 4001 and the reconnect policy decides

    # ───────────────────────────── channels ─────────────────────────────

    def subscribe(self, channel: str, *, since: int | None = None, on_gap: OnGap = "raise") -> Subscription:
        """Subscribes to a channel, now or once connected, and keeps it subscribed across
        reconnects. Returns a Subscription: iterate it for events, ``await`` it for the server's
        confirmation. ``since`` replays every retained event after that seq first (only when this
        client is not subscribed to the channel yet)."""
        return self._router.open(channel, since=since, on_gap=on_gap, extra={})

    def _subscribe(self, channel: str, *, since: int | None, on_gap: OnGap, extra: dict[str, Any]) -> Subscription:
        return self._router.open(channel, since=since, on_gap=on_gap, extra=extra)

    async def _release(self, sub: Subscription) -> None:
        await self._router.release(sub)
