"""A fake `bentoml` CLI for BentoCloud, which cannot be reached from a test: an executable
put first on PATH. It appends its argv to a log and keeps the deployment's Bento and its
coming statuses in files: `deployment get -o json` answers with JSON shaped like the real
CLI's (bentoml 1.4: "bento" and "status": {"status": ...}; "not found" when there is no
deployment), taking the next status of the rollout each time (`deploying` -> `running`, or
-> `failed`, as FAKE_BENTOML_ROLLOUTS says per Bento); `deploy` and `deployment update`
start a rollout, `deployment terminate` ends in `terminated`, `secret list -o json` prints
FAKE_BENTOML_SECRETS, and `get <bento> -o json` answers from the local store in
FAKE_BENTOML_LOCAL. Used by tests/unit/ship/test_release.py and the deploy rehearsal."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

FAKE_BENTOML = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_BENTOML_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
current = Path(os.environ["FAKE_BENTOML_CURRENT"])
statuses = current.with_name("statuses")  # the rollout's coming statuses, the last one stays
if not os.environ.get("BENTO_CLOUD_API_KEY"):  # the real CLI's credentials variable
    print("Error: [deployment] `get` failed: No cloud context default found", file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAKE_BENTOML_FAIL") and " ".join(args).startswith(os.environ["FAKE_BENTOML_FAIL"]):
    print("Error: unauthorized: invalid API token", file=sys.stderr)
    sys.exit(1)

def roll_out(bento):
    current.write_text(bento)
    rollouts = json.loads(os.environ.get("FAKE_BENTOML_ROLLOUTS", "{{}}"))
    statuses.write_text(json.dumps(rollouts.get(bento, ["deploying", "running"])))

if args[:2] == ["deployment", "get"]:
    if not current.exists():
        print(f"Error: [deployment] `get` failed: Deployment {{args[2]}} is not found", file=sys.stderr)
        sys.exit(1)
    coming = json.loads(statuses.read_text()) if statuses.exists() else ["running"]
    statuses.write_text(json.dumps(coming[1:] or coming))
    status = {{"status": coming[0], "created_at": "2025-01-01 00:00:00", "updated_at": "2025-01-01 00:00:00"}}
    print("using context __env__")  # a notice before the JSON, as the real CLI may print
    print(json.dumps({{"name": args[2], "bento": current.read_text(), "cluster": "gcp-us-1",
                      "admin_console": "https://example.cloud.bentoml.com", "status": status}}, indent=2))
elif args[0] == "deploy":
    roll_out(args[1])
elif args[:2] == ["deployment", "update"]:
    roll_out(args[args.index("--bento") + 1])
elif args[:2] == ["deployment", "terminate"]:
    if not current.exists():
        print(f"Error: Deployment {{args[2]}} is not found", file=sys.stderr)
        sys.exit(1)
    statuses.write_text(json.dumps(["terminating", "terminated"]))
elif args[:2] == ["secret", "list"]:
    print(os.environ["FAKE_BENTOML_SECRETS"])
elif args[0] == "get":  # the local Bento store
    name, _, version = args[1].partition(":")
    local = json.loads(os.environ.get("FAKE_BENTOML_LOCAL", "{{}}"))
    if name not in local or version not in ("", "latest"):
        print(f"Error: Bento '{{args[1]}}' is not found in BentoML store", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({{"service": "service:Svc", "name": name, "version": local[name]}}, indent=2))
"""


def install(bin_dir: Path) -> Path:
    """The fake CLI as `bin_dir`/bentoml, executable."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake = bin_dir / "bentoml"
    fake.write_text(FAKE_BENTOML)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


class FakeCloud:
    """The fake CLI's view: the commands it received, the Bento it runs and its status."""

    def __init__(self, root: Path) -> None:
        self.log, self.current = root / "bentoml.log", root / "current"
        self.statuses = root / "statuses"

    def commands(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        self.log.unlink()
        return [json.loads(line) for line in lines]

    def bento(self) -> str | None:
        return self.current.read_text() if self.current.exists() else None

    def status(self) -> str:
        return json.loads(self.statuses.read_text())[-1] if self.statuses.exists() else "running"
