#!/usr/bin/env python3
"""The shape of a GPU pipeline written in Python, as the Switchyard runner runs it.

The runner (PIPELINE_EXECUTABLE=examples/python/progress_pipeline.py) starts it once per job:

- stdin: the job as one JSON line (job_id, sample_id, path_to_r1, path_to_r2, output_path, params);
- environment: JOB_ID, JOB_ATTEMPT, CUDA_VISIBLE_DEVICES / GPU_DEVICE_ID (its GPU slot),
  REFERENCE_DB_PATH, RESISTANCE_DB_PATH;
- stdout: JSON lines. {"progress": 0.42, "stage": "align", "message": "..."} becomes a
  job.progress event on job:<id> (watchers see it live: client.watch_job, switchyard watch,
  the console); {"result": {...}} is the job's result (job.completed); {"error": "...",
  "class": "permanent"} says why it fails and whether a retry can help. Other lines are ignored;
- exit code: 0 success; 75 (EX_TEMPFAIL, e.g. GPU out of memory) is retried; 64-78 otherwise
  are permanent (e.g. 65 bad input). See docs/jobs.md, "The pipeline contract".

The work here is a stand-in (sleep); replace `run_stage` with your model. The example that
really computes on the GPU is examples/pipeline/gpu-pipeline.py. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

EX_DATAERR = 65
EX_TEMPFAIL = 75


def report(**fields: Any) -> None:
    """One JSON line on stdout, flushed at once so the runner sees progress as it happens."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def run_stage(name: str, seconds: float) -> None:
    time.sleep(seconds)  # your GPU work goes here


def main() -> int:
    try:
        job = json.loads(sys.stdin.readline())
    except ValueError as err:
        report(error=f"the job on stdin is not JSON: {err}", **{"class": "permanent"})
        return EX_DATAERR
    params = job.get("params") or {}
    stages = ["load", "align", "call", "write"]
    stage_s = float(params.get("stage_ms", 500)) / 1000
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "cpu")
    for i, stage in enumerate(stages):
        report(progress=i / len(stages), stage=stage, message=f"{stage} ({i + 1}/{len(stages)}) on GPU {gpu}")
        try:
            run_stage(stage, stage_s)
        except MemoryError:
            report(error=f"out of memory in {stage}", **{"class": "transient"})
            return EX_TEMPFAIL
    report(progress=1.0, stage="done", message="finished")
    report(result={"sample_id": job.get("sample_id"), "stages": len(stages), "gpu": gpu})
    return 0


if __name__ == "__main__":
    sys.exit(main())
