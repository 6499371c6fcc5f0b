"""Tokens: a fixed JWT or a provider (sync or async callable), and when to refresh one.

The client reads ``exp`` from the JWT payload without verifying it (that is the server's job)."""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Awaitable, Callable

from ._errors import InvalidArgumentError, ProviderError

#: Called with no argument, or with the reason (``"connect"`` or ``"refresh"``) when it takes one.
TokenProvider = Callable[..., "str | Awaitable[str]"]

#: Refresh this long before ``exp`` ...
DEFAULT_REFRESH_MARGIN_S = 30.0
#: ... but never more than this share of the token's remaining lifetime (short-lived tokens).
MAX_MARGIN_SHARE = 0.25


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch), or None when absent or not a JWT."""
    parts = token.split(".")
    if len(parts) < 2 or parts[1] == "":
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


def refresh_delay(exp: float, now: float, margin: float = DEFAULT_REFRESH_MARGIN_S) -> float:
    """Seconds from ``now`` until a token expiring at ``exp`` should be refreshed: ``margin``
    before expiry, or a quarter of the remaining lifetime when that is shorter. 0 when due."""
    remaining = exp - now
    if remaining <= 0:
        return 0.0
    return max(0.0, remaining - min(margin, remaining * MAX_MARGIN_SHARE))


class TokenSource:
    """A fixed token or a provider, asked on every (re)connect and before expiry."""

    def __init__(self, token: str | TokenProvider) -> None:
        if isinstance(token, str):
            if token == "":
                raise InvalidArgumentError("token", "must be a non-empty JWT string or a callable returning one")
        elif not callable(token):
            raise InvalidArgumentError("token", f"must be a JWT string or a callable returning one, got {type(token).__name__}")
        self._token = token
        self._wants_reason = False if isinstance(token, str) else _takes_an_argument(token)
        self.last: str | None = token if isinstance(token, str) else None

    @property
    def refreshable(self) -> bool:
        return not isinstance(self._token, str)

    async def get(self, reason: str = "connect") -> str:
        if isinstance(self._token, str):
            return self._token
        try:
            value = self._token(reason) if self._wants_reason else self._token()
            if inspect.isawaitable(value):
                value = await value
        except Exception as err:
            raise ProviderError(f"the token provider failed: {err}") from err
        if not isinstance(value, str) or value == "":
            raise ProviderError(f"the token provider returned {value!r}, not a JWT")
        self.last = value
        return value


def _takes_an_argument(fn: TokenProvider) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return any(p.kind is p.VAR_POSITIONAL for p in params) or any(p.default is p.empty for p in positional)
