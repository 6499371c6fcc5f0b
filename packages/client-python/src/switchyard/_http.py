"""The HTTP side (``POST /jobs``, ``GET /jobs/:id``) with the standard library, in a thread."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ._errors import AuthError, ConnectionLostError, server_error


def http_base(ws_url: str) -> str:
    """``ws://host:port/ws?x`` → ``http://host:port``."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc, "", "", ""))


def _call(method: str, url: str, token: str, body: Any, timeout: float) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = {"error": raw[:200].decode(errors="replace")}
    return status, parsed


async def http_json(method: str, url: str, token: str, body: Any = None, *, timeout: float = 10.0) -> Any:
    """Calls an endpoint; returns the JSON body of a 2xx, raises a typed error otherwise."""
    try:
        status, parsed = await asyncio.to_thread(_call, method, url, token, body, timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise ConnectionLostError(f"{method} {url}: {err}") from err
    if 200 <= status < 300:
        return parsed
    info = parsed if isinstance(parsed, dict) else {}
    code = str(info.get("code") or info.get("error") or f"http_{status}")
    message = f"{method} {url}: HTTP {status} {info.get('error', '')}".rstrip()
    if status == 401:
        raise AuthError(code, message)
    raise server_error(code if status != 403 else "forbidden", message, status=status)
