"""Pages per minute through the whole service, and where the time goes.

    python -m benchmarks.service_throughput [--pages 12] [--model PATH]

Starts ``inkwell serve`` (web, a 'pages' worker and a 'lines' worker, SQLite and its broker, the
bundled model unless --model says otherwise) in a temporary folder, submits generated forms
(tests/form_set.py, A4 at 200 dpi) as one job over HTTP, waits for it, and prints:

- pages per minute, from the submission to the job's end;
- each stage's share of the pages' summed stage time, from the timings every page records
  (``pages.timings``, worker/pipeline.py): waiting on the 'pages' queue, decoding, detection (line
  finding, cropping, text type), writing the lines, waiting on the 'lines' queue (batching and
  loading included), reading (the model; a batch's time shared by line count), writing results.

Queue waits are what a page spends behind others; with one 'pages' process and a job larger than
its window they grow with the job, so the shares are printed with and without them.
"""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import requests

from tests.form_set import EVAL_SEEDS, eval_hands, label_fonts, make_eval_form
from tests.processes import Processes, create_token, free_port, wait_for_job, wait_until_up

STAGES = ("pages_queue", "decode", "detection", "store_lines", "lines_queue", "reading", "store_results")
WORK = ("decode", "detection", "store_lines", "reading", "store_results")


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--model", help="a model folder (default: the bundled model)")
    args = parser.parse_args()
    hands, printed = eval_hands(), label_fonts()
    forms = [make_eval_form(seed, hands, printed) for seed in EVAL_SEEDS[: args.pages]]
    files = [("files", (f"form-{i}.png", _png(form.image), "image/png")) for i, form in enumerate(forms)]
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {"INKWELL_DATA_DIR": str(Path(folder) / "var"), "INKWELL_WEB_PORT": str(port), "INKWELL_WEB_WORKERS": "1"}
        if args.model:
            env["INKWELL_MODEL"] = args.model
        processes = Processes(env, Path(folder))
        base = f"http://127.0.0.1:{port}"
        try:
            processes.run("migrate")
            auth = create_token(processes)
            processes.start("serve", "serve")  # web, a 'pages' worker and a 'lines' worker, as a user runs them
            wait_until_up(f"{base}/healthz", processes)
            started = time.monotonic()
            response = requests.post(f"{base}/api/v1/jobs", files=files, headers=auth, timeout=120)
            response.raise_for_status()
            body = wait_for_job(base, response.json()["id"], processes, auth, timeout=3600)
            elapsed = time.monotonic() - started
        finally:
            processes.stop_all()
        database = Path(folder) / "var" / "inkwell.db"
        rows = sqlite3.connect(database).execute("SELECT timings FROM pages WHERE timings IS NOT NULL").fetchall()
    timings = [json.loads(row[0]) for row in rows]
    totals = {stage: sum(t.get(stage, 0.0) for t in timings) for stage in STAGES}
    lines = sum(len(page["lines"]) for page in body["pages"])
    print(
        f"{len(forms)} pages ({lines} lines) in {elapsed:.1f} s: {60 * len(forms) / elapsed:.1f} pages per minute "
        f"(job {body['status']}, model {body['model']})"
    )
    everything, work = sum(totals.values()) or 1.0, sum(totals[s] for s in WORK) or 1.0
    print(f"{'stage':<14} {'seconds':>9} {'share':>7} {'share of work':>14}")
    for stage in STAGES:
        share_of_work = f"{100 * totals[stage] / work:13.1f}%" if stage in WORK else f"{'':>14}"
        print(f"{stage:<14} {totals[stage]:9.2f} {100 * totals[stage] / everything:6.1f}% {share_of_work}")
    outside = totals["decode"] + totals["store_lines"] + totals["store_results"]
    print(f"outside detection and reading (decoding, database writes): {100 * outside / work:.1f}% of the work")


if __name__ == "__main__":
    main()
