"""MLflow helpers: flat params, credentials kept out of outputs, the data hash from
dvc.lock, the commit."""

from __future__ import annotations

import subprocess

from llmops.config import tracking
from llmops.config.params import LoraParams


def test_params_flatten_to_dotted_keys():
    lora = LoraParams(
        r=8,
        alpha=16.0,
        dropout=0.0,
        target_modules=("q_proj", "v_proj"),
        modules_to_save=("embed_tokens",),
    )
    assert tracking.flatten({"train": {"lora": lora, "seed": 3}}) == {
        "train.lora.r": "8",
        "train.lora.alpha": "16.0",
        "train.lora.dropout": "0.0",
        "train.lora.target_modules": "q_proj,v_proj",
        "train.lora.modules_to_save": "embed_tokens",
        "train.seed": "3",
    }


def test_credentials_never_leave_the_uri():
    assert tracking.safe_uri("https://bob:s3cret@mlflow.example.com:5000/x") == (
        "https://mlflow.example.com:5000/x"
    )
    assert tracking.safe_uri("sqlite:///mlflow.db") == "sqlite:///mlflow.db"
    # a query string or fragment may hold a token too (a presigned or SAS-style URL)
    assert tracking.safe_uri("s3://key:secret@bucket/p?token=x#frag") == "s3://bucket/p"


def test_default_uri_is_local_sqlite_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_data_hash_comes_from_dvc_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n  prep:\n    outs:\n"
        "    - path: data/prepared\n      md5: abc123.dir\n"
    )
    assert tracking.locked_hash(lock, "prep", "data/prepared") == "abc123.dir"
    assert tracking.locked_hash(lock, "prep", "data/other") == "unknown"
    assert tracking.locked_hash(tmp_path / "missing.lock", "prep", "data/prepared") == "unknown"


def test_commit_is_marked_dirty_when_tracked_files_changed(tmp_path):
    assert tracking.git_commit(tmp_path) == "unknown"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run(["git", "add", "f"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "c"], cwd=tmp_path, check=True)
    sha = tracking.git_commit(tmp_path)
    assert len(sha) == 40
    (tmp_path / "f").write_text("2")
    assert tracking.git_commit(tmp_path) == f"{sha}-dirty"


def test_a_run_id_the_store_does_not_have_starts_a_new_tagged_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with tracking.start("train", {"a": "1"}, {"stage": "train"}) as first:
        pass
    with tracking.start("eval", {}, {"stage": "eval"}, first.info.run_id) as again:
        assert again.info.run_id == first.info.run_id  # continued
    with tracking.start("eval", {}, {"stage": "eval"}, "0123456789abcdef") as new:
        assert new.info.run_id != first.info.run_id
    run = MlflowClient().get_run(new.info.run_id)
    assert run.data.tags["continues_run"] == "0123456789abcdef"
    assert run.data.tags["stage"] == "eval"
