"""A ComfyUI-like app using otel_integration.py: runs jobs that log their steps, then flushes
each job through the otelspool sidecar and logs its coverage.

    pip install -r requirements.txt
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 python app.py --jobs 3 --steps 20

`--until-file F` keeps the last job logging until F exists (tests stop and restart the sidecar
meanwhile); `--progress F` rewrites F with the records logged so far and the exporter's failed attempts; `--report F`
writes a JSON summary at the end (records logged per job, exported, abandoned, flush answers).
Each record's body ends with `id=<run>-<job>-<step>`, unique per record.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path

import otel_integration

log = logging.getLogger("comfyui.worker")


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_progress(path: Path, logged: int, telemetry) -> None:
    write_atomically(path, json.dumps({
        "logged": logged, "failed_attempts": telemetry.exporter.failed_attempts}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="records per job")
    ap.add_argument("--rate", type=float, default=50.0, help="records per second")
    ap.add_argument("--run-id", default=uuid.uuid4().hex[:8])
    ap.add_argument("--until-file", type=Path)
    ap.add_argument("--progress", type=Path)
    ap.add_argument("--report", type=Path)
    args = ap.parse_args()

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    telemetry = otel_integration.setup()
    logged: dict[str, int] = {}
    flushes: dict[str, dict] = {}
    total = 0
    for j in range(args.jobs):
        job_id, workflow_id = f"{args.run_id}-job{j}", f"wf-{j % 2}"
        last = j == args.jobs - 1
        with telemetry.job(job_id, workflow_id):
            step = 0
            while step < args.steps or (last and args.until_file and not args.until_file.exists()):
                log.info("[job %s] KSampler step %d id=%s-%d", job_id, step, job_id, step)
                step += 1
                total += 1
                if args.progress and total % 10 == 0:
                    write_progress(args.progress, total, telemetry)
                time.sleep(1 / args.rate)
            logged[job_id] = step
        flushes[job_id] = telemetry.job_done(job_id)
    if args.progress:
        write_progress(args.progress, total, telemetry)
    telemetry.shutdown()
    if args.report:
        write_atomically(args.report, json.dumps({
            "run_id": args.run_id,
            "endpoint": telemetry.endpoint.describe(),
            "logged": logged,
            "exported": telemetry.exporter.exported,
            "abandoned": telemetry.exporter.abandoned,
            "failed_attempts": telemetry.exporter.failed_attempts,
            "flushes": flushes,
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
