"""The model registry (llmops.ship.registry) against a real MLflow store: a temporary SQLite
database with two runs laid out like the train stage's (the adapter folder logged as the
run's `adapter` artifact, the run id in training.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmops.config import tracking
from llmops.ship import registry

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
                   "--name", NAME, *extra])  # fmt: skip


def promote() -> None:
    registry.main(["promote", "--name", NAME])


def champion() -> str | None:
    return registry.alias_version(registry.client(), NAME, "champion")


def challenger() -> str | None:
    return registry.alias_version(registry.client(), NAME, "challenger")


def test_register_names_a_challenger_promote_moves_the_champion_and_rollback_undoes_it(
    store, capsys, monkeypatch
):
    monkeypatch.setenv("GITHUB_OUTPUT", str(store / "github_output"))
    first, second = train_run(store, "one"), train_run(store, "two")
    register(first, "--bento-model", "reviews-model:abc")
    assert (challenger(), champion()) == ("1", None)  # registered, not serving yet
    promote()
    assert champion() == "1"
    register(second)
    # A release cancelled or failed after register leaves the champion where it was.
    assert (challenger(), champion()) == ("2", "1")
    promote()
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
    promote()
    assert len(mlflow.search_model_versions(f"name = '{NAME}'")) == 2
    assert champion() == "2"
    assert "already registered as" in capsys.readouterr().out
    lines = (store / "github_output").read_text().splitlines()
    assert lines == ["registered_version=1", "alias_moved=true", "registered_version=2",
                     "alias_moved=true", "registered_version=2", "alias_moved=false"]  # fmt: skip
    assert mlflow.get_model_version(NAME, "2").tags["previous_champion"] == "1"

    registry.main(["rollback", "--name", NAME])
    assert champion() == "1"
    assert "version 2 -> 1" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="version 1, which records no previous_champion"):
        registry.main(["rollback", "--name", NAME])
    assert champion() == "1"


def test_promote_without_a_challenger_is_refused_and_moves_nothing(store):
    with pytest.raises(SystemExit, match="reviews-model@challenger points to no version"):
        promote()
    register(train_run(store, "one"))
    promote()
    with pytest.raises(SystemExit, match="@nobody points to no version"):
        registry.main(["promote", "--name", NAME, "--from", "nobody"])
    assert champion() == "1"


def test_promote_takes_the_version_the_release_built_not_a_later_challenger(store):
    register(train_run(store, "one"))
    register(train_run(store, "two"))  # a later merge registered while v1 awaited approval
    registry.main(["promote", "--name", NAME, "--version", "1"])
    assert (champion(), challenger()) == ("1", "2")
    for bad, says in (("7", "7"), ("1 or 2", "bad version")):
        with pytest.raises(SystemExit, match=says):
            registry.main(["promote", "--name", NAME, "--version", bad])
    assert champion() == "1"


def test_record_tags_the_challenger_with_what_serves_it(store, capsys):
    register(train_run(store, "one"))
    registry.main(["record", "--name", NAME, "bento=llmops-service:x1y2",
                   "image_digest=sha256:" + "a" * 64, "previous_bento=llmops-service:old"])  # fmt: skip
    tags = registry.client().get_model_version(NAME, "1").tags
    assert tags["bento"] == "llmops-service:x1y2"
    assert tags["image_digest"] == "sha256:" + "a" * 64
    assert tags["previous_bento"] == "llmops-service:old"
    assert "recorded bento, image_digest, previous_bento" in capsys.readouterr().out
    for bad in ("novalue", "Upper=x", "key=line\nbreak", "=x"):
        with pytest.raises(SystemExit, match="bad record"):
            registry.main(["record", "--name", NAME, bad])
    registry.main(["record", "--name", NAME, "image_digest="])  # not configured: skipped
    assert (
        registry.client().get_model_version(NAME, "1").tags["image_digest"] == "sha256:" + "a" * 64
    )
    state = store / "previous.json"  # as llmops.ship.release deploy writes it
    state.write_text(json.dumps({"deployment": "prod", "previous": None, "deployed": "svc:v2"}))
    registry.main(["record", "--name", NAME, "--state", str(state)])
    tags = registry.client().get_model_version(NAME, "1").tags
    assert (tags["deployment"], tags["bento"]) == ("prod", "svc:v2")
    assert tags["previous_bento"] == "llmops-service:old"  # a first deploy replaced nothing


def test_the_registered_version_downloads_as_the_adapter_folder(store, tmp_path):
    import mlflow

    register(train_run(store, "one"))
    promote()
    got = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}@champion", dst_path="dl"))
    assert json.loads((got / "adapter_config.json").read_text()) == {"r": 4}


def test_show_lists_versions_with_their_aliases(store, capsys):
    register(train_run(store, "one"))
    promote()
    register(train_run(store, "two"))
    promote()
    capsys.readouterr()
    registry.main(["show", "--name", NAME])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{NAME} (sqlite:///")
    assert out[1].startswith("  v2  aliases=challenger,champion  run=")
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
