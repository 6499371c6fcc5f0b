"""``switchyard.connect(...)``."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from ._client import Client
from ._token import TokenProvider


class _Connect:
    """``connect(...)``: use with ``async with`` (closes at the end) or ``await`` it."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Generator[Any, None, Client]:
        return self._client.start().__await__()

    async def __aenter__(self) -> Client:
        return await self._client.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._client.close()


def connect(url: str | Sequence[str], *, token: str | TokenProvider, **options: Any) -> _Connect:
    """Connects to Switchyard: ``async with switchyard.connect(url, token=TOKEN) as client: ...``.
    Options are those of ``Client``."""
    return _Connect(Client(url, token=token, **options))
