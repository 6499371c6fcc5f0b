#!/usr/bin/env python3
"""Follow a channel and print its events; publish one to show the round trip.

    pnpm switchyard dev                        # prints TOKEN=... ; listens on 127.0.0.1:8765
    pip install -e packages/client-python      # once, in a virtual environment
    TOKEN=... python examples/python/subscriber.py dashboard

Environment: SWITCHYARD_URL (default ws://127.0.0.1:8765/ws), TOKEN (a JWT allowed to read the
channel; to publish too it needs a publish right, e.g. `pnpm switchyard token --sub me
--channels 'dashboard' --publish 'dashboard'`).
"""

from __future__ import annotations

import asyncio
import os
import sys

import switchyard


async def main(channel: str) -> None:
    url = os.environ.get("SWITCHYARD_URL", "ws://127.0.0.1:8765/ws")
    async with switchyard.connect(url, token=os.environ["TOKEN"]) as client:
        print(f"connected to {client.node_id} as {client.user_id}; following {channel} (Ctrl-C to stop)")
        sub = await client.subscribe(channel)
        try:
            await client.publish(channel, {"hello": "from python"}, event="greeting")
        except switchyard.ForbiddenError:
            print("(this token may not publish here; waiting for others' events)")
        while True:
            try:
                async for ev in sub:
                    print(f"{ev.channel} #{ev.seq} {ev.event}: {ev.data}")
            except switchyard.GapError as err:
                # Events were lost (e.g. offline longer than the history); reload state, go on.
                print(f"gap: {err}")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "dashboard"))
    except KeyboardInterrupt:
        pass
