"""The model registry (llmops.registry) against a real MLflow store: a temporary SQLite
database with two runs laid out like the train stage's (the adapter folder logged as the
run's `adapter` artifact, the run id in training.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops import registry, tracking

NAME = "reviews-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A fresh local store; runs' artifacts land under tmp_path (mlruns/ is relative)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LLMOPS_COMMIT", COMMIT)  # what tracking.git_commit reports
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "60")
    (tmp_path / "eval.json").write_text(json.dumps({"tuned": {"json_valid": 0.97}}))
    return tmp_path


def train_run(root: Path, label: str) -> Path:
    """An adapter folder with training.json, logged as the train stage logs it."""
    import mlflow

    adapter = root / label
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    with tracking.start("train", {}, {"stage": "train"}) as run:
        (adapter / "training.json").write_text(json.dumps({"run_id": run.info.run_id}))
        mlflow.log_artifacts(str(adapter), artifact_path=registry.ARTIFACT_PATH)
    return adapter


def register(adapter: Path, *extra: str) -> None:
    registry.main(["register", "--adapter", str(adapter), "--eval", "eval.json",
                   "--name", NAME, "--alias", "champion", *extra])  # fmt: skip


def champion() -> str:
    return str(registry.client().get_model_version_by_alias(NAME, "champion").version)


def test_register_moves_the_alias_records_the_previous_one_and_rolls_back(
    store, capsys, monkeypatch
):
    monkeypatch.setenv("GITHUB_OUTPUT", str(store / "github_output"))
    first, second = train_run(store, "one"), train_run(store, "two")
    register(first, "--bento-model", "reviews-model:abc")
    assert champion() == "1"
    register(second)
    assert champion() == "2"
    assert "previous_champion: 1" in capsys.readouterr().out
    mlflow = registry.client()
    v2 = mlflow.get_model_version(NAME, "2")
    assert v2.tags["previous_champion"] == "1"
    assert v2.tags["git_commit"] == COMMIT
    assert v2.tags["eval.json_valid"] == "0.97"
    assert v2.source == f"runs:/{v2.run_id}/adapter"
    assert mlflow.get_model_version(NAME, "1").tags["bento_model"] == "reviews-model:abc"

    register(second)  # the same run again: no new version, the record kept
    assert len(mlflow.search_model_versions(f"name = '{NAME}'")) == 2
    assert champion() == "2"
    assert "already registered as" in capsys.readouterr().out
    assert (store / "github_output").read_text().splitlines()[-4:] == [
        "registered_version=2", "alias_moved=true",  # the second run
        "registered_version=2", "alias_moved=false",  # the same again: a rollback would undo v2
    ]  # fmt: skip
    assert mlflow.get_model_version(NAME, "2").tags["previous_champion"] == "1"

    registry.main(["rollback", "--name", NAME, "--alias", "champion"])
    assert champion() == "1"
    assert "version 2 -> 1" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="version 1, which records no previous_champion"):
        registry.main(["rollback", "--name", NAME, "--alias", "champion"])
    assert champion() == "1"


def test_the_registered_version_downloads_as_the_adapter_folder(store, tmp_path):
    import mlflow

    register(train_run(store, "one"))
    got = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion", dst_path="dl"))
    assert json.loads((got / "adapter_config.json").read_text()) == {"r": 4}


def test_show_lists_versions_with_their_aliases(store, capsys):
    register(train_run(store, "one"))
    register(train_run(store, "two"))
    capsys.readouterr()
    registry.main(["show", "--name", NAME])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{NAME} (sqlite:///")
    assert out[1].startswith("  v2  aliases=champion  run=")
    assert "previous_champion=1" in out[1] and f"git_commit={COMMIT}" in out[1]
    assert out[2].startswith("  v1  aliases=-  run=")


def test_a_run_the_store_does_not_have_is_refused_by_name(store):
    adapter = store / "elsewhere"
    adapter.mkdir()
    (adapter / "training.json").write_text(json.dumps({"run_id": "ab" * 16}))
    with pytest.raises(SystemExit, match=f"run {'ab' * 16} is not in sqlite:///"):
        register(adapter)


def test_require_server_skips_with_a_notice_when_the_store_is_local(store, capsys):
    register(store / "no-adapter-needed", "--require-server")  # exits 0: returns
    out = capsys.readouterr().out
    assert out.startswith("registry register: skipped, no MLflow tracking server")
    assert len(out.splitlines()) == 1
    assert not (store / "mlflow.db").exists()  # nothing was touched


def test_the_name_defaults_to_serve_name_and_is_checked(store, repo, capsys):
    register(train_run(store, "one"))
    with pytest.raises(SystemExit, match="Registered Model with name=llmops-model not found"):
        registry.main(["show", "--params", str(repo / "params.yaml")])  # serve.name
    with pytest.raises(SystemExit, match="bad registered model name \"x' or name != '\""):
        registry.main(["show", "--name", "x' or name != '"])


def test_error_messages_drop_credentials_of_the_tracking_uri():
    text = "API request to https://bob:s3cret@mlflow.example.com/api/2.0/x failed"
    uri = "https://bob:s3cret@mlflow.example.com"
    assert registry.scrub(text, uri) == "API request to https://mlflow.example.com/api/2.0/x failed"


def test_the_artifact_path_is_the_one_the_train_stage_logs(repo):
    # The train stage (not changed here) names it inline; this keeps the two in step.
    source = (repo / "src" / "llmops" / "stages" / "train.py").read_text()
    assert f'artifact_path="{registry.ARTIFACT_PATH}"' in source
