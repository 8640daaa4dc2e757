"""Rehearse the whole loop on loopback: serve, traffic, monitor, harvest, and prep's check.

Run: make simulate   (after make bento)
     (python -m llmops.watch.simulate --params params.yaml --data data/prepared/val.jsonl \
        --train data/prepared/train.jsonl --bento llmops-service:latest --out reports/simulate)

It serves the Bento (`bentoml serve` on 127.0.0.1, a fresh API key, its logs in
`<out>/logs`; LLMOPS_LOG_URI and the AWS environment pass through, so the logs can go to an
object store as in production) and sends two windows of traffic:
- in distribution: the inputs of the test split as they are, with feedback on every answer:
  a correction (the test split's own outputs, an e-mail address planted in its text
  fields) for one answer in CORRECTED, a good rating for the rest;
- shifted: the same inputs made unlike the training data, in turn much longer (the text
  repeated up to the field's limit), in another script (Latin letters written as Greek) and
  on a new topic (sentences from a vocabulary the task has never seen).
Then `make monitor` runs on each window (`<out>/in_distribution`, `<out>/shifted`) and
`make harvest` on both (`<out>/raw`, `<out>/labelling`), and every harvested row is checked
the way prep checks a raw row (`llmops.data.records.parse_row`). `<out>/simulation.json`
holds the figures; it exits 1, naming what went wrong, unless the monitor passes the
in-distribution window, flags the shifted one for drift, and prep would take every
harvested row.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from llmops.config.params import Params, load_params, task_file
from llmops.config.task import Task
from llmops.model.tokenised import read_split
from llmops.ship.localserver import running
from llmops.watch import logs as watched

CORRECTED = 5  # one answer in this many gets a correction (20%: monitor.max_correction_share)
OWN = ("logs", "raw", "labelling", "harvest", "in_distribution", "shifted")  # in --out
PLANTED = " Write to jane.doe@example.com."  # in corrected texts: must come out redacted
GREEK = str.maketrans(
    "abcdefghiklmnoprstuxyzABCDEFGHIKLMNOPRSTUXYZ",
    "αβψδεφγηικλμνοπρστυχυζΑΒΨΔΕΦΓΗΙΚΛΜΝΟΠΡΣΤΥΧΥΖ",
)
NEW_TOPIC = (
    "the telescope tracked a faint comet across the southern sky",
    "volcanic ash drifted over the glacier during the long polar night",
    "the orchestra tuned its violins before the baroque concerto",
    "a migrating flock of cranes rested on the frozen marsh",
    "the chess grandmaster sacrificed a rook in the endgame",
)


def shifted(text: str, i: int, limit: int) -> str:
    """`text` made unlike the training data: longer, in another script, or off topic."""
    kind = i % 3
    if kind == 0:
        return (" ".join([text] * 12))[:limit]
    if kind == 1:
        return text.translate(GREEK)[:limit]
    rng = random.Random(i)
    return " ".join(rng.choice(NEW_TOPIC) for _ in range(3))[:limit]


def traffic(url: str, key: str, task: Task, rows: list[dict], shift: bool) -> dict:
    """Answer requests (and, in distribution, feedback) for `rows`; counts by outcome."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    counts = {"requests": 0, "answered": 0, "feedback": 0, "corrections": 0}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as http:
        for i, row in enumerate(rows):
            fields = {f.name: row[f.name] for f in task.inputs}
            if shift:
                fields = {f.name: shifted(row[f.name], i, f.max_chars) for f in task.inputs}
            answer = http.post("/v1/answer", json={"input": fields})
            counts["requests"] += 1
            if answer.status_code != 200:
                continue
            counts["answered"] += 1
            if shift:
                continue
            feedback: dict = {"request_id": answer.json()["request_id"], "rating": 5}
            if i % CORRECTED == 0:
                correction = task.answer(row)
                for f in task.texts:  # a user's correction may hold personal data
                    correction[f.name] = (correction[f.name] + PLANTED)[-f.max_chars :]
                feedback = {**feedback, "rating": 2, "correction": correction}
            done = http.post("/v1/feedback", json=feedback)
            if done.status_code == 201:
                counts["feedback"] += 1
                counts["corrections"] += "correction" in feedback
    return counts


def watch(module: str, args: list[str]) -> tuple[int, str]:
    """Run `python -m llmops.watch.<module>`; its exit status and its output."""
    done = subprocess.run(
        [sys.executable, "-m", f"llmops.watch.{module}", *args],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def window(since: datetime, until: datetime) -> list[str]:
    return ["--since", since.isoformat(), "--until", until.isoformat()]


def check_rows(params: Params, task: Task, raw: Path) -> dict:
    """Every harvested row, checked as prep checks a raw row; counts by outcome."""
    from llmops.data.records import Rejection, parse_row, read_rows

    counts: dict[str, int] = {}
    for path in sorted(raw.glob("*.jsonl")):
        for where, row, text in read_rows(path, path.name):
            if not isinstance(row, Rejection):
                row = parse_row(where, row, text, task, params.prep)
            outcome = row.reason if isinstance(row, Rejection) else "kept"
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def simulate(args: argparse.Namespace) -> dict:
    params = load_params(args.params)
    task = Task.from_params(params.task)
    rows = read_split(args.data)[: args.requests]
    out = args.out
    logs = (out / "logs").resolve()  # bentoml serve runs in the Bento's own folder
    out.mkdir(parents=True, exist_ok=True)
    for name in OWN:  # an earlier run's, so that this one reads only its own
        shutil.rmtree(out / name, ignore_errors=True)
    key = secrets.token_urlsafe(16)
    env = {**os.environ, params.serve.api_key_env: key, "LLMOPS_LOG_DIR": str(logs)}
    location = watched.location(None, params.serve.log_uri, default=str(logs))
    result: dict = {"bento": args.bento, "rows": len(rows), "logs": location.split("@")[-1]}
    with running(args.bento, env=env, cwd=args.params.parent.resolve()) as url:
        start = datetime.now(UTC)
        result["in_distribution_traffic"] = traffic(url, key, task, rows, shift=False)
        middle = datetime.now(UTC)
        time.sleep(0.01)
        result["shifted_traffic"] = traffic(url, key, task, rows, shift=True)
        end = datetime.now(UTC)
        if location != str(logs):  # let the sink write its last batches
            time.sleep(params.serve.logs.sink_flush_s + 2)
    common = ["--params", str(args.params), "--logs", location]
    for name, since, until in (("in_distribution", start, middle), ("shifted", middle, end)):
        folder = out / name
        code, text = watch(
            "monitor",
            [*common, "--train", str(args.train), "--out", str(folder), *window(since, until)],
        )
        figures = folder / "figures.json"
        result[name] = {
            "exit": code,
            "output": text,
            "figures": json.loads(figures.read_text()) if figures.exists() else None,
        }
    (out / "raw").mkdir(exist_ok=True)  # its own: the project's data/raw is left as it is
    code, text = watch(
        "harvest",
        [
            *common,
            "--raw",
            str(out / "raw"),
            "--labelling",
            str(out / "labelling"),
            *window(start, end),
        ],
    )
    result["harvest"] = {
        "exit": code,
        "output": text,
        "rows": check_rows(params, task, out / "raw"),
    }
    result["problems"] = problems(result)
    return result


def crossed(figures: dict | None) -> list[str]:
    return [str(c.get("threshold")) for c in (figures or {}).get("crossed", [])]


def problems(result: dict) -> list[str]:
    """What the loop got wrong, one line each (empty: it worked)."""
    found = []
    calm, moved = result["in_distribution"], result["shifted"]
    if calm["figures"] is None or calm["exit"] not in (0, 1):
        found.append(f"monitor failed on the in-distribution window: {calm['output'][-300:]}")
    elif any("drift" in name for name in crossed(calm["figures"])):
        found.append(
            f"the in-distribution window was flagged for drift: {crossed(calm['figures'])}"
        )
    if moved["figures"] is None or not any("drift" in n for n in crossed(moved["figures"])):
        found.append(f"the shifted window was not flagged for drift: {moved['output'][-300:]}")
    harvest = result["harvest"]
    if harvest["exit"] != 0 or not harvest["rows"].get("kept"):
        found.append(f"harvest gave no row prep keeps: {harvest['output'][-300:]}")
    rejected = {k: v for k, v in harvest["rows"].items() if k != "kept"}
    if rejected:
        found.append(f"prep would reject harvested rows: {rejected}")
    if harvest.get("planted"):
        found.append(f"a planted e-mail address was stored unredacted: {harvest['planted']}")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True, help="requests: a prepared split")
    parser.add_argument("--train", type=Path, required=True, help="the training split")
    parser.add_argument("--bento", default="llmops-service:latest")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=120, help="requests per window")
    args = parser.parse_args(argv)
    if not task_file(args.params).is_file() and not args.params.is_file():
        raise SystemExit(f"simulate: {args.params} not found")
    result = simulate(args)
    (args.out / "simulation.json").write_text(json.dumps(result, indent=2) + "\n")
    for name in ("in_distribution", "shifted"):
        figures = result[name]["figures"] or {}
        print(f"{name}: exit {result[name]['exit']}, crossed {crossed(figures) or 'nothing'}")
    print(
        f"harvest: {result['harvest']['output'].splitlines()[-1:]} rows {result['harvest']['rows']}"
    )
    if result["problems"]:
        print("\n".join(result["problems"]), file=sys.stderr)
        raise SystemExit(1)
    print(f"simulate: the loop works ({args.out / 'simulation.json'})")


if __name__ == "__main__":
    main()
