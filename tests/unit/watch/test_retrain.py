"""The monitor workflow's GitHub side, against a GitHub API on loopback (tests/fakegithub.py):
one issue while thresholds are crossed, one retraining pull request per harvested batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.watch import retrain
from tests.fakegithub import FakeGitHub

CROSSED = {
    "window": {"since": "2026-12-05T00:00:00+00:00", "until": "2026-12-06T00:00:00+00:00"},
    "crossed": [{"threshold": "monitor.max_p99_ms", "limit": 5000, "value": 6123.0}],
}


@pytest.fixture
def gh(monkeypatch):
    with FakeGitHub() as server:
        monkeypatch.setenv("GITHUB_API_URL", server.url)
        monkeypatch.setenv("GITHUB_TOKEN", server.token)
        monkeypatch.delenv("RETRAIN_TOKEN", raising=False)
        yield server


def figures(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"figures-{len(list(tmp_path.glob('figures-*')))}.json"
    path.write_text(json.dumps(data))
    return path


def test_a_crossed_threshold_opens_one_issue_then_updates_it(tmp_path, gh, capsys):
    path = figures(tmp_path, CROSSED)
    retrain.main(["issue", "--figures", str(path), "--repo", gh.repo, "--run-url", "https://x/1"])
    assert capsys.readouterr().out.strip() == "retrain issue: opened #1"
    opened = gh.issues[1]
    assert opened["title"] == "Monitoring: monitor.max_p99_ms" and opened["labels"] == [
        "monitoring"
    ]
    assert opened["body"].startswith(retrain.MARKER)
    assert "| monitor.max_p99_ms | 5000 | 6123.0 |" in opened["body"]
    retrain.main(["issue", "--figures", str(path), "--repo", gh.repo])
    assert capsys.readouterr().out.strip() == "retrain issue: updated #1"
    assert len(gh.issues) == 1 and gh.comments[-1][0] == 1
    assert "Crossed again: monitor.max_p99_ms" in gh.comments[-1][1]


def test_figures_back_within_thresholds_comment_on_the_open_issue_only(tmp_path, gh, capsys):
    calm = figures(tmp_path, {"crossed": []})
    retrain.main(["issue", "--figures", str(calm), "--repo", gh.repo])
    assert "no issue open" in capsys.readouterr().out and not gh.issues and not gh.comments
    retrain.main(["issue", "--figures", str(figures(tmp_path, CROSSED)), "--repo", gh.repo])
    retrain.main(["issue", "--figures", str(calm), "--repo", gh.repo])
    assert "commented on #1" in capsys.readouterr().out.splitlines()[-1]
    assert "Back within the monitoring thresholds" in gh.comments[-1][1]
    assert gh.issues[1]["state"] == "open"  # a person closes it


def test_an_issue_someone_else_opened_is_never_edited(tmp_path, gh):
    gh.issues[1] = {"number": 1, "state": "open", "title": "mine", "body": "not ours",
                    "labels": ["monitoring"]}  # fmt: skip
    retrain.main(["issue", "--figures", str(figures(tmp_path, CROSSED)), "--repo", gh.repo])
    assert gh.issues[1]["body"] == "not ours" and gh.issues[2]["body"].startswith(retrain.MARKER)


def harvested(root: Path, name: str, enough: bool, harvested: int) -> Path:
    """A batch and its provenance, as make harvest leaves them under `root`."""
    batch = root / "data" / "raw" / f"{name}.jsonl"
    batch.parent.mkdir(parents=True, exist_ok=True)
    batch.write_text('{"text": "<EMAIL> wants a refund", "topic": "price"}\n')
    provenance = root / "data" / "harvest" / f"{name}.json"
    provenance.parent.mkdir(parents=True, exist_ok=True)
    record = {"raw": "data/raw/" + batch.name, "enough": enough, "min_corrections": 20,
              "counts": {"harvested": harvested, "corrections": harvested + 1}}  # fmt: skip
    provenance.write_text(json.dumps(record))
    return batch


def test_enough_corrections_open_one_pull_request_with_the_batch(tmp_path, gh, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    harvested(tmp_path, "harvest-20261204T000000Z-20261205T000000Z", True, 30)
    batch = harvested(tmp_path, "harvest-20261205T000000Z-20261206T000000Z", True, 24)
    args = ["pull-request", "--repo", gh.repo]
    retrain.main(args)
    branch = "retrain/harvest-20261205T000000Z-20261206T000000Z"  # the newest batch
    assert f"opened pull request #1 from {branch}" in capsys.readouterr().out
    assert gh.refs[branch] == "c0ffee"
    assert sorted(name for _, name in gh.files) == [
        "data/harvest/harvest-20261205T000000Z-20261206T000000Z.json",
        "data/raw/harvest-20261205T000000Z-20261206T000000Z.jsonl",
    ]
    assert gh.files[branch, "data/raw/" + batch.name] == batch.read_bytes()
    pull = gh.pulls[0]
    assert pull["base"] == "main" and pull["title"].startswith("Retrain on 24 corrected answers")
    assert '"harvested": 24' in pull["body"]
    retrain.main(args)  # the same batch again: the branch exists, nothing new
    assert "exists; nothing to do" in capsys.readouterr().out and len(gh.pulls) == 1


def test_too_few_corrections_or_none_open_nothing(tmp_path, gh, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    retrain.main(["pull-request", "--repo", gh.repo])
    assert "nothing harvested in data/harvest" in capsys.readouterr().out
    harvested(tmp_path, "harvest-x", False, 2)
    retrain.main(["pull-request", "--repo", gh.repo])
    assert (
        "2 corrections harvested (min_corrections 20); no pull request" in capsys.readouterr().out
    )
    assert gh.calls == [] and not gh.pulls


def test_a_rejected_token_is_one_line_naming_the_call(tmp_path, gh, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    with pytest.raises(SystemExit) as stopped:
        retrain.main(["issue", "--figures", str(figures(tmp_path, CROSSED)), "--repo", gh.repo])
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "wrong" not in err
    assert err.startswith(f"retrain issue: GET /repos/{gh.repo}/issues: HTTP 401")


def test_a_batch_in_dvc_tracked_raw_data_is_pushed_and_its_dvc_file_committed(
    tmp_path, monkeypatch
):
    import subprocess
    import sys

    dvc = [sys.executable, "-m", "dvc"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    for command in (["git", "init", "-q"], [*dvc, "init", "-q"],
                    [*dvc, "remote", "add", "-d", "store", str(tmp_path / "store")]):  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "old.jsonl").write_text('{"text": "old"}\n')
    subprocess.run([*dvc, "add", "data/raw"], check=True, capture_output=True)
    before = (tmp_path / "data" / "raw.dvc").read_text()
    harvested(tmp_path, "harvest-y", True, 25)
    provenance = tmp_path / "data" / "harvest" / "harvest-y.json"
    files = retrain.batch_files(json.loads(provenance.read_text()), provenance, "store")
    assert files == [Path("data/raw.dvc"), provenance]
    assert (tmp_path / "data" / "raw.dvc").read_text() != before  # the new batch is in it
    assert any((tmp_path / "store").rglob("*"))  # and pushed to the remote
