"""The examples of examples/python/ run against a real node."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Cluster, mint, unique

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "python"


async def run(script: str, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, str(EXAMPLES / script), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


async def test_submit_and_watch_example_follows_a_job_to_completion(cluster: Cluster) -> None:
    done = await run("submit_and_watch.py", {"SWITCHYARD_URL": cluster.a, "TOKEN": mint(cluster.secret, "example-user")})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("submitted ") and "job.queued" in lines and "job.completed" in lines
    assert "100%" in done.stdout


async def test_subscriber_example_prints_its_own_event(cluster: Cluster) -> None:
    channel = unique("dash-example")
    token = mint(cluster.secret, "example-user", channels=[channel], publish=[channel])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "subscriber.py"), channel, env={**os.environ, "SWITCHYARD_URL": cluster.b, "TOKEN": token}, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            while b"greeting" not in (line := await proc.stdout.readline()):
                assert line, "the example ended early"
        assert line.decode().strip() == f"{channel} #1 greeting: {{'hello': 'from python'}}"
    finally:
        proc.kill()
        await proc.wait()


def test_progress_pipeline_speaks_the_runner_contract() -> None:
    job = {"job_id": "p1", "sample_id": "S9", "params": {"stage_ms": 1}}
    done = subprocess.run([str(EXAMPLES / "progress_pipeline.py")], input=json.dumps(job) + "\n", capture_output=True, text=True, timeout=30, env={**os.environ, "CUDA_VISIBLE_DEVICES": "3"})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    progress = [line["progress"] for line in lines if "progress" in line]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) == 5
    assert lines[-1] == {"result": {"sample_id": "S9", "stages": 4, "gpu": "3"}}
    bad = subprocess.run([str(EXAMPLES / "progress_pipeline.py")], input="not json\n", capture_output=True, text=True, timeout=30)
    assert bad.returncode == 65 and json.loads(bad.stdout)["class"] == "permanent"
