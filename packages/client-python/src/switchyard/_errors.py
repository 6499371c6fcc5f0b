"""One exception class per failure. Each has a stable ``code`` (for programs) and ``retriable``:
whether doing the same thing again later may succeed. Messages say what to change where that
is the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._types import Gap


class SwitchyardError(Exception):
    """Base of every error this client raises."""

    code: str = "error"
    retriable: bool = False

    def __init__(self, message: str, *, code: str | None = None, retriable: bool | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if retriable is not None:
            self.retriable = retriable


class InvalidArgumentError(SwitchyardError, ValueError):
    """A bad argument or option, caught before anything was sent."""

    code = "invalid_argument"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f'"{field}" {problem}')
        self.field = field


class AuthError(SwitchyardError):
    """The server refused the token (``auth_error``, HTTP 401). ``reason`` is the server's code:
    ``bad_signature``, ``token_expired``, ``bad_claims``, ``too_many_connections``, ..."""

    code = "auth_failed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"the server refused the token ({reason}): {message}; give the client a valid token (argument \"token\")")
        self.reason = reason


class AuthExpiredError(SwitchyardError):
    """The token expired on a live connection and no fresh one could be had."""

    code = "auth_expired"


class SessionTakenOverError(SwitchyardError):
    """Another connection resumed this client's session (close 4011); this one stops."""

    code = "session_taken_over"


class ReconnectFailedError(SwitchyardError):
    """Reconnecting gave up (``max_attempts`` reached, or reconnecting is off)."""

    code = "reconnect_failed"
    retriable = True


class ProviderError(SwitchyardError):
    """The token provider raised or returned something that is not a token."""

    code = "provider_failed"
    retriable = True


class RequestTimeoutError(SwitchyardError, TimeoutError):
    """A request got no reply in time. ``stage`` is ``queued`` (never sent: not connected in
    time) or ``sent`` (sent, no reply)."""

    code = "timeout"
    retriable = True

    def __init__(self, what: str, timeout: float, stage: str) -> None:
        if stage == "queued":
            text = f"{what}: not connected within {timeout:g} s, so it was never sent (raise request_timeout, or check client.state)"
        else:
            text = f"{what}: sent, but no reply within {timeout:g} s (raise request_timeout)"
        super().__init__(text)
        self.what = what
        self.timeout = timeout
        self.stage = stage


class ConnectionLostError(SwitchyardError):
    """The connection dropped while a request was in flight: it may or may not have taken effect."""

    code = "connection_lost"
    retriable = True


class ClientClosedError(SwitchyardError):
    """The client was closed (by ``close()``, or for good after a failure: see ``__cause__``)."""

    code = "closed"


class ServerError(SwitchyardError):
    """The server answered with an ``error`` frame, a failed ``subscription_result`` or an HTTP
    error. ``server_code`` is the wire code (``forbidden``, ``not_found``, ``bad_channel``, ...);
    ``status`` the HTTP status for HTTP calls."""

    code = "server_error"

    def __init__(self, server_code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message, retriable=server_code in ("unavailable", "rate_limited"))
        self.server_code = server_code
        self.status = status


class ForbiddenError(ServerError):
    """No right to do this (subscribe, publish, presence, a job that is not yours)."""


class NotFoundError(ServerError):
    """No live target for ``direct``, or no such job."""


class RateLimitedError(ServerError):
    """Past the server's rate limit."""


def server_error(server_code: str, message: str, *, status: int | None = None) -> ServerError:
    """The ServerError subclass for a wire code."""
    cls: type[ServerError] = {"forbidden": ForbiddenError, "not_found": NotFoundError, "rate_limited": RateLimitedError}.get(server_code, ServerError)
    return cls(server_code, message, status=status)


class GapError(SwitchyardError):
    """Events of a channel were lost: the server no longer held them (``recovered: false``),
    the channel's history was reset (a new epoch), or the subscription's buffer overflowed
    because it was not read. ``gap`` says which channel, where and how. The subscription
    stays alive: iterate it again to go on from the next event."""

    code = "gap"

    def __init__(self, gap: Gap) -> None:
        super().__init__(f"events lost on {gap.channel} ({gap.kind}): last seen {gap.last_seq}, the channel is at {gap.seq}")
        self.gap = gap
