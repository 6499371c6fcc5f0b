"""Per-channel ordering: what makes "every event once, in order" hold across reconnects,
resumes, replays and node failures. Pure logic: no sockets, no timers.

The server numbers each channel's events 1, 2, 3, ... (``seq``). The stream remembers the last
seq handed to the application and:

- drops anything at or below it (a replay after a resume repeats events);
- hands over the next one at once, then whatever it buffered that now follows;
- buffers an event that comes early (seq > last + 1) and says a fill is needed: a ``subscribe``
  with ``since = last`` whose replay brings the missing ones — unless the event says the server
  coalesced that many events away on purpose (``coalesced: n``);
- after ``recovered: false`` (the server no longer holds what was missed) or a new ``epoch`` (the
  history was reset, seqs start over) reports a gap or a reset and takes the next event as its
  new starting point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._types import Event, Gap

#: Out-of-order events held per channel while a fill is on its way.
DEFAULT_MAX_HELD = 10_000


@dataclass(slots=True)
class PushOutcome:
    deliver: list[Event] = field(default_factory=list)
    #: An event came early: ask for a replay from ``last``.
    need_fill: bool = False
    duplicate: bool = False


class ChannelStream:
    def __init__(self, channel: str, since: int | None = None, max_held: int = DEFAULT_MAX_HELD) -> None:
        self.channel = channel
        #: Seq of the last event handed over; None before the stream has a starting point.
        self.last: int | None = since
        self.epoch: str | None = None
        #: The server's latest seq at the last subscription_result, used until ``last`` is known.
        self._hint: int | None = None
        self._rebase: Literal["none", "forward", "any"] = "none"
        self._held: dict[int, Event] = {}
        self._max_held = max_held

    @property
    def resume_from(self) -> int | None:
        """The ``since`` to send when (re)subscribing, so the server replays exactly what is missing."""
        return self.last if self.last is not None else self._hint

    @property
    def waiting(self) -> bool:
        return len(self._held) > 0

    def on_subscribed(self, seq: int, epoch: str | None, recovered: bool | None, since: int | None) -> tuple[Gap | None, bool]:
        """A successful ``subscription_result``; ``since`` is what our subscribe sent (None for one
        the server sent by itself: a resumed session, a reset notice). Returns the gap to report,
        and whether to check, once the replay is through, that the stream caught up with ``seq``."""
        last = self.last
        epoch_changed = self.epoch is not None and epoch is not None and epoch != self.epoch
        if epoch is not None:
            self.epoch = epoch
        self._hint = seq
        if epoch_changed:
            self._held.clear()
            self.last = None
            self._rebase = "any"
            return Gap("reset", self.channel, last, seq, epoch), False
        if recovered is False and since is None and self.last is not None:
            # A resumed session's replay (or a server notice) measured from the server's own
            # record of this client, which can lag behind what it really got (a killed node
            # records in batches): its replay may still cover everything after ``last``. Check,
            # and let a fill from ``last`` give the authoritative answer.
            return None, seq > self.last
        if recovered is False:
            self._held.clear()
            self._rebase = "any" if self.last is None else "forward"
            return Gap("gap", self.channel, last, seq, epoch), False
        if self.last is None:
            if self._rebase == "none":
                self.last = since if since is not None else seq
            return None, False
        # A resume the server started by itself replays from where *it* thinks we stood, which
        # after a crash can be ahead of what really arrived: check once the replay is through.
        return None, since is None and seq > self.last

    def push(self, event: Event) -> PushOutcome:
        if event.seq is None:
            return PushOutcome([event])
        seq = event.seq
        if self._rebase != "none":
            if self._rebase == "any" or self.last is None or seq > self.last:
                self._rebase = "none"
                self._held.clear()
                self.last = seq
                return PushOutcome([event])
            return PushOutcome(duplicate=True)
        if self.last is None:
            self.last = seq
            return PushOutcome([event])
        if seq <= self.last or seq in self._held:
            return PushOutcome(duplicate=True)
        if seq > self.last + 1 and not (event.coalesced > 0 and seq - self.last - 1 <= event.coalesced and not self._held):
            if len(self._held) >= self._max_held:
                self._held.clear()
            self._held[seq] = event
            return PushOutcome(need_fill=True)
        self.last = seq
        out = PushOutcome([event])
        while (nxt := self._held.pop(self.last + 1, None)) is not None:
            self.last += 1
            out.deliver.append(nxt)
        for key in [k for k in self._held if k <= self.last]:
            del self._held[key]
        out.need_fill = bool(self._held)
        return out
