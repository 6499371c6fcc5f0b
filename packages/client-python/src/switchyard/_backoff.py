"""Reconnect timing: capped exponential backoff with full jitter, and what each close code means
for the next attempt. Pure functions, so the policy is testable without sockets."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._errors import InvalidArgumentError

#: First backoff ceiling, seconds.
DEFAULT_INITIAL_DELAY_S = 0.25
#: Backoff ceiling cap, seconds.
DEFAULT_MAX_DELAY_S = 15.0
DEFAULT_FACTOR = 2.0
#: A connection that stayed up this long resets the backoff.
DEFAULT_STABLE_AFTER_S = 5.0
#: After close 4008 (rate limited) the server's bucket needs time to refill.
RATE_LIMITED_MIN_DELAY_S = 1.0
#: Exponents past this would only overflow; the cap has long been reached.
_MAX_EXPONENT = 62

# Close codes (docs/protocol.md, "Errors and close codes").
CLOSE_RESTART = 1012
CLOSE_AUTH = 4001
CLOSE_RATE_LIMITED = 4008
CLOSE_SLOW_CONSUMER = 4010
CLOSE_SESSION_TAKEN_OVER = 4011
#: Used by this client for a socket it gave up on itself (connect timeout, provider failure).
CLOSE_CLIENT_ABORT = 4000

#: ``auth_error`` codes that say nothing about the token itself, so a retry may succeed.
TRANSIENT_AUTH_CODES = frozenset({"auth_timeout", "key_unavailable", "too_many_connections"})


@dataclass(frozen=True, slots=True)
class ReconnectOptions:
    """Reconnect policy. ``enabled=False`` turns reconnecting off."""

    enabled: bool = True
    #: Backoff ceiling of the first retry (s); it grows by ``factor`` per failed attempt.
    initial_delay: float = DEFAULT_INITIAL_DELAY_S
    #: Cap on the backoff ceiling (s).
    max_delay: float = DEFAULT_MAX_DELAY_S
    factor: float = DEFAULT_FACTOR
    #: A connection that stays up this long (s) resets the backoff to its first step.
    stable_after: float = DEFAULT_STABLE_AFTER_S
    #: Consecutive failed attempts before giving up (ReconnectFailedError).
    max_attempts: float = math.inf

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "stable_after", "max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise InvalidArgumentError(f"reconnect.{name}", f"must be a non-negative number, got {value!r}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, (int, float)) or not self.factor > 0:
            raise InvalidArgumentError("reconnect.factor", f"must be a positive number, got {self.factor!r}")
        if self.max_delay < self.initial_delay:
            raise InvalidArgumentError("reconnect.max_delay", f"must be at least reconnect.initial_delay ({self.initial_delay})")


def full_jitter(attempt: int, options: ReconnectOptions, rand: Callable[[], float] = random.random) -> float:
    """A uniformly random delay in [0, ceiling], ceiling = min(max_delay, initial_delay × factor^attempt).
    ``attempt`` counts from 0."""
    exponent = min(max(0, attempt), _MAX_EXPONENT)
    ceiling = min(options.max_delay, options.initial_delay * options.factor**exponent)
    return rand() * ceiling


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """What the client knew when its socket closed."""

    code: int
    reason: str = ""
    #: The ``auth_error`` code received on this connection, if any.
    auth_error: str | None = None
    auth_error_text: str = ""
    #: The server sent ``auth_expired`` before closing.
    auth_expired: bool = False
    #: ``after_ms`` of a ``reconnect`` frame received before the close, in seconds.
    reconnect_after: float | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float
    counts_as_failure: bool
    action: Literal["retry"] = "retry"


@dataclass(frozen=True, slots=True)
class Fail:
    why: Literal["auth_failed", "auth_expired", "session_taken_over"]
    detail: str
    action: Literal["fail"] = "fail"


def decide_reconnect(close: CloseInfo, attempt: int, options: ReconnectOptions, *, can_refresh_token: bool, rand: Callable[[], float] = random.random) -> Retry | Fail:
    """What follows a close (the same policy as the TypeScript SDK):

    - 4011 (another connection resumed the session): fail, do not fight over the session;
    - ``auth_expired``: retry at once when a token provider can give a fresh token, else fail;
    - ``auth_error`` / 4001: the token was refused — fail, unless the reason was transient;
    - a ``reconnect`` frame, or 1012 (draining): come back after ``after_ms`` (0 without a
      frame), not counted as a failure;
    - 4008 (rate limited): backoff, at least a second;
    - 4010 (slow consumer): at once for the first attempt, then backoff (the session resumes);
    - anything else (1001, 1006, 1009, 1011, 4009, a refused connection, ...): backoff.
    """
    def backoff() -> float:
        return full_jitter(attempt, options, rand)

    if close.code == CLOSE_SESSION_TAKEN_OVER:
        return Fail("session_taken_over", "another connection resumed this session (close 4011)")
    if close.auth_expired:
        if can_refresh_token:
            return Retry(0.0, True)
        return Fail("auth_expired", 'the token expired and "token" is a fixed string; pass a token provider (a callable) to refresh it')
    if close.auth_error is not None:
        if close.auth_error in TRANSIENT_AUTH_CODES:
            return Retry(backoff(), True)
        return Fail("auth_failed", close.auth_error)
    if close.code == CLOSE_AUTH:
        return Fail("auth_failed", close.reason or "closed 4001")
    if close.reconnect_after is not None:
        return Retry(max(0.0, close.reconnect_after), False)
    if close.code == CLOSE_RESTART:
        return Retry(0.0, False)
    if close.code == CLOSE_RATE_LIMITED:
        return Retry(max(RATE_LIMITED_MIN_DELAY_S, backoff()), True)
    if close.code == CLOSE_SLOW_CONSUMER and attempt == 0:
        return Retry(0.0, True)
    return Retry(backoff(), True)
