"""What the application iterates: a channel's events (``Subscription``) and a job's events until
its end (``JobWatch``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ._errors import GapError, SwitchyardError
from ._types import TERMINAL_JOB_EVENTS, Event, Gap, Presence, PresenceChange, Snapshot

if TYPE_CHECKING:
    from ._client import Client

OnGap = Literal["raise", "ignore"]


class _End:
    """Queued last: the subscription ended (``error``: why, None for a plain end)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Subscription:
    """One subscriber of a channel: an async iterator of its events, each once and in seq order.

    Made by ``client.subscribe(channel)``; the client keeps the channel subscribed across
    reconnects until ``unsubscribe()`` (or the ``async with`` block ends). Several subscriptions
    to the same channel share one server subscription and each get every event.

    - ``await sub`` (or ``await sub.ready()``) waits for the server's confirmation and raises
      ``ForbiddenError`` (or another ``ServerError``) if it refused; iterating does the same.
    - Lost events (``recovered: false``, a history reset, or not reading fast enough) raise
      ``GapError`` from the iterator (``on_gap="ignore"`` skips them; ``gaps`` lists them all).
      The subscription stays alive: iterate it again to go on.
    - If the client fails for good (refused token, session taken over), the iterator raises
      that error; after ``close()`` or ``unsubscribe()`` it simply ends.
    """

    def __init__(self, client: Client, channel: str, *, on_gap: OnGap, max_buffered: int) -> None:
        self.channel = channel
        self._client = client
        self._on_gap = on_gap
        self._max_buffered = max_buffered
        self._queue: asyncio.Queue[Event | Gap | _End] = asyncio.Queue()
        self._presence: asyncio.Queue[PresenceChange | _End] = asyncio.Queue()
        self._events = 0
        self._overflowing = False
        self._ended = False
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Nobody may ever await a refusal (e.g. a subscription only iterated later): keep asyncio quiet.
        self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        #: Every gap seen on this subscription, in order.
        self.gaps: list[Gap] = []
        #: The channel's latest seq when the server confirmed the subscription.
        self.seq: int | None = None
        #: Whether a subscribe with ``since`` got the whole replay (None without ``since``).
        self.recovered: bool | None = None
        #: The last ``snapshot`` of a job channel, if the server sent one.
        self.snapshot: Snapshot | None = None

    # ── the application's side ──

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        await self.ready()
        while True:
            item = await self._queue.get()
            if isinstance(item, Event):
                self._events -= 1
                if self._overflowing and self._events < self._max_buffered:
                    self._overflowing = False
                return item
            if isinstance(item, Gap):
                if self._on_gap == "raise":
                    raise GapError(item)
                continue
            # Stay ended for every later call too.
            self._queue.put_nowait(item)
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration

    def _take_nowait(self) -> Event | None:
        """The next event already received, if any (gaps skipped)."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Event):
                self._events -= 1
                return item
            if isinstance(item, _End):
                self._queue.put_nowait(item)
                return None
        return None

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self.ready().__await__()

    async def ready(self, timeout: float | None = None) -> Subscription:
        """Waits until the server confirmed the subscription; raises if it refused."""
        if timeout is None:
            await asyncio.shield(self._ready)
        else:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        return self

    async def unsubscribe(self) -> None:
        """Stops this subscription; the iterator ends. The server subscription goes when its last
        subscriber does."""
        if self._ended:
            return
        self._end(None)
        await self._client._release(self)

    aclose = unsubscribe

    async def __aenter__(self) -> Subscription:
        return await self.ready()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.unsubscribe()

    async def presence(self) -> Presence:
        """Who is on this channel now, cluster-wide (needs ``PRESENCE_CHANNELS`` on the server)."""
        return await self._client.presence(self.channel)

    async def presence_changes(self) -> AsyncIterator[PresenceChange]:
        """``join`` and ``leave`` on this channel, as they come (single consumer)."""
        while True:
            item = await self._presence.get()
            if isinstance(item, _End):
                self._presence.put_nowait(item)
                if item.error is not None:
                    raise item.error
                return
            yield item

    # ── the client's side ──

    def _confirm(self, seq: int, recovered: bool | None) -> None:
        if not self._ready.done():
            self.seq = seq
            self.recovered = recovered
            self._ready.set_result(None)

    def _feed(self, item: Event | Gap) -> None:
        if self._ended:
            return
        if isinstance(item, Gap):
            self.gaps.append(item)
            self._queue.put_nowait(item)
            return
        if self._events >= self._max_buffered:
            # Not read fast enough: drop, and say so once where the loss begins.
            if not self._overflowing:
                self._overflowing = True
                gap = Gap("overflow", self.channel, None, item.seq if item.seq is not None else 0)
                self.gaps.append(gap)
                self._queue.put_nowait(gap)
            return
        self._events += 1
        self._queue.put_nowait(item)

    def _feed_presence(self, change: PresenceChange) -> None:
        if not self._ended and self._presence.qsize() < self._max_buffered:
            self._presence.put_nowait(change)

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._ready.done():
            if error is not None:
                self._ready.set_exception(error)
            else:
                self._ready.set_result(None)
        self._queue.put_nowait(_End(error))
        self._presence.put_nowait(_End(error))


class JobWatch:
    """A job's events (``job:<id>``) from its first, in order, ending after its final event
    (``job.completed``, ``job.failed`` or ``job.cancelled``). Where the channel's history no
    longer holds them, the job's status record stands in: the last item is then an ``Event``
    with ``from_status=True``, ``event`` ``job.<state>`` and the status as ``data``."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.job_id = job_id
        self._client = client
        self._sub: Subscription | None = None
        self._done = False
        #: Stands in for the final event if the replay that follows a gap does not hold it.
        self._fallback: Event | None = None
        #: The final event, once seen.
        self.final: Event | None = None

    def __aiter__(self) -> JobWatch:
        return self

    async def __anext__(self) -> Event:
        if self._done:
            raise StopAsyncIteration
        if self._sub is None:
            self._sub = self._client._subscribe(f"job:{self.job_id}", since=0, on_gap="raise", extra={"snapshot": False})
        while True:
            if self._fallback is not None:
                # The job has ended and its replay is all here: hand over what the history still
                # had, then the status record if the final event was not among it.
                event = self._sub._take_nowait() or self._fallback
                if event.event in TERMINAL_JOB_EVENTS:
                    return await self._finish(event)
                return event
            try:
                event = await self._sub.__anext__()
            except GapError:
                status = await self._client.get_job(self.job_id)
                state = status.get("state")
                if isinstance(state, str) and f"job.{state}" in TERMINAL_JOB_EVENTS:
                    # The replay travels right behind the subscription_result: a pong follows it.
                    await self._client.ping()
                    seq = status.get("seq")
                    self._fallback = Event(self._sub.channel, seq if isinstance(seq, int) else None, f"job.{state}", status, str(status.get("updated_at", "")), from_status=True)
                continue
            except StopAsyncIteration:
                self._done = True
                raise
            if event.event in TERMINAL_JOB_EVENTS:
                return await self._finish(event)
            return event

    async def _finish(self, event: Event) -> Event:
        self._done = True
        self.final = event
        await self.aclose()
        return event

    async def aclose(self) -> None:
        self._done = True
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except SwitchyardError:
                pass

    async def __aenter__(self) -> JobWatch:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
