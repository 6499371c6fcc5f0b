#!/usr/bin/env python3
"""Submit a job and watch it to the end: a progress bar from its job.progress events.

    pnpm switchyard dev                       # runs jobs in process with the demo pipeline
    TOKEN=... python examples/python/submit_and_watch.py

Exits 0 when the job completed, 1 when it failed or was cancelled.
"""

from __future__ import annotations

import asyncio
import os
import sys

import switchyard


def bar(progress: float, width: int = 30) -> str:
    done = int(progress * width)
    return "[" + "#" * done + "-" * (width - done) + f"] {progress:4.0%}"


async def main() -> int:
    url = os.environ.get("SWITCHYARD_URL", "ws://127.0.0.1:8765/ws")
    async with switchyard.connect(url, token=os.environ["TOKEN"]) as client:
        job_id = await client.submit_job(sample_id="S1", params={"stages": 4, "stage_ms": 500})
        print(f"submitted {job_id}")
        final = None
        async for ev in client.watch_job(job_id):
            if ev.event == "job.progress":
                print(f"\r{bar(float(ev.data.get('progress', 0)))} {ev.data.get('stage', '')}".ljust(60), end="", flush=True)
            else:
                print(f"\n{ev.event}" if ev.event != "job.queued" else ev.event)
            final = ev
        assert final is not None
        print(final.data)
        return 0 if final.event == "job.completed" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
