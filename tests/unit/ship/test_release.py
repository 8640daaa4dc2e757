"""Release steps (llmops.ship.release): the plan from the environment, the checked image tag,
and deploy/rollback on BentoCloud.

BentoCloud cannot be reached from a test: the `bentoml` CLI is the fake in tests/fakecloud.py,
put first on PATH.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmops.ship import release
from tests.fakecloud import FakeCloud, install
from tests.synthetic import write_params

KEY_VALUE = "key-value-that-never-goes-on-argv"
SECRET = {  # as `bentoml secret list -o json` prints one (bentoml 1.4 Secret.to_dict)
    "name": "llmops-api-key",
    "description": "the service's API key",
    "content": {"type": "env", "items": [{"key": "LLMOPS_TEST_API_KEY"}], "stage": "runtime"},
    "cluster": {"name": "gcp-us-1"},
}
SECRET_LIST = ["secret", "list", "-o", "json"]


class FakeClock:
    """Time that passes only when slept through, so a 15-minute wait takes no time."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def cloud(tmp_path, monkeypatch) -> FakeCloud:
    bin_dir = install(tmp_path / "bin").parent
    write_params(tmp_path / "params.yaml")  # serve.api_key_env: LLMOPS_TEST_API_KEY
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_BENTOML_LOG", str(tmp_path / "bentoml.log"))
    monkeypatch.setenv("FAKE_BENTOML_CURRENT", str(tmp_path / "current"))
    monkeypatch.setenv("FAKE_BENTOML_SECRETS", json.dumps([SECRET]))
    monkeypatch.setenv("BENTOML_CLOUD_API_KEY", "test-key")  # the project's secret name
    monkeypatch.setenv("BENTOCLOUD_SECRET", "llmops-api-key")  # as make deploy-cloud sets it
    monkeypatch.setenv("LLMOPS_TEST_API_KEY", KEY_VALUE)
    monkeypatch.delenv("BENTO_CLOUD_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return FakeCloud(tmp_path)


def deploy(bento: str, *more: str) -> None:
    release.main(["deploy", "--bento", bento, "--name", "llmops", "--interval", "0", *more])


def recorded() -> dict:
    return json.loads(Path(".release/previous.json").read_text())


GET = ["deployment", "get", "llmops", "-o", "json"]


def test_deploy_records_the_replaced_bento_and_rollback_restores_it(cloud, capsys):
    deploy("svc:v1")
    assert cloud.commands() == [
        SECRET_LIST,
        GET,  # not found: create it, with the secret, and wait below
        ["deploy", "svc:v1", "-n", "llmops", "--secret", "llmops-api-key", "--no-wait"],
        GET,  # deploying
        GET,  # running
    ]
    assert recorded() == {
        "deployment": "llmops",
        "previous": None,
        "deployed": "svc:v1",
        "rolled_back": False,
    }

    deploy("svc:v2")
    assert cloud.commands() == [
        SECRET_LIST,
        GET,
        # keeps its scaling config; --secret keeps the API key attached
        ["deployment", "update", "llmops", "--bento", "svc:v2", "--secret", "llmops-api-key"],
        GET,
        GET,
    ]
    assert recorded() == {
        "deployment": "llmops",
        "previous": "svc:v1",
        "deployed": "svc:v2",
        "rolled_back": False,
    }
    assert (cloud.bento(), cloud.status()) == ("svc:v2", "running")
    assert "deployed svc:v2 (previous: svc:v1" in capsys.readouterr().out

    # a later step (the smoke test of the endpoint) failed: the workflow rolls back
    release.main(["rollback", "--name", "llmops", "--interval", "0"])
    assert cloud.commands() == [["deployment", "update", "llmops", "--bento", "svc:v1"], GET, GET]
    assert (cloud.bento(), cloud.status()) == ("svc:v1", "running")
    assert "rolled back to svc:v1" in capsys.readouterr().out

    release.main(["rollback", "--name", "llmops"])  # again (a later rollback step): no-op
    assert "rolled back already: nothing to do" in capsys.readouterr().out
    assert cloud.commands() == []


def test_a_first_deploy_that_fails_a_later_smoke_test_is_terminated_on_rollback(cloud, capsys):
    deploy("svc:v1")  # no deployment before: it ran nothing
    cloud.commands()
    assert recorded()["previous"] is None
    release.main(["rollback", "--name", "llmops", "--interval", "0"])
    assert cloud.commands() == [["deployment", "terminate", "llmops"]]
    assert "terminated (it ran nothing before svc:v1)" in capsys.readouterr().out
    assert recorded()["rolled_back"] is True


def test_deploy_without_a_configured_secret_refuses_and_runs_nothing(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("BENTOCLOUD_SECRET", "")  # an unset CI variable reads as empty
    with pytest.raises(SystemExit) as exited:
        deploy("svc:v2")
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "set BENTOCLOUD_SECRET (or --secret)" in err
    assert "`bentoml secret create <name> LLMOPS_TEST_API_KEY=...`" in err
    assert len(err.strip().splitlines()) == 1
    assert cloud.commands() == []
    assert cloud.bento() == "svc:v1"
    assert not Path(".release/previous.json").exists()


@pytest.mark.parametrize(
    ("secrets", "says"),
    [
        (
            [],
            "BentoCloud secret 'llmops-api-key' not found: create it with `bentoml secret create llmops-api-key LLMOPS_TEST_API_KEY=...`",
        ),
        ([{**SECRET, "name": "other"}], "secret 'llmops-api-key' not found"),
        (
            [{**SECRET, "content": {"type": "env", "items": [{"key": "OTHER"}]}}],
            "does not set LLMOPS_TEST_API_KEY at run time (keys: OTHER)",
        ),
        (
            [{**SECRET, "content": {**SECRET["content"], "type": "mountfile"}}],
            "does not set LLMOPS_TEST_API_KEY",
        ),
        (
            [{**SECRET, "content": {**SECRET["content"], "stage": "build"}}],
            "does not set LLMOPS_TEST_API_KEY",
        ),
    ],
)
def test_deploy_refuses_a_secret_that_does_not_hold_the_key(
    cloud, capsys, monkeypatch, secrets, says
):
    monkeypatch.setenv("FAKE_BENTOML_SECRETS", json.dumps(secrets))
    with pytest.raises(SystemExit):
        deploy("svc:v1")
    assert says in capsys.readouterr().err
    assert cloud.commands() == [SECRET_LIST]  # nothing deployed


def test_the_api_key_is_attached_as_a_secret_and_never_on_argv(cloud, monkeypatch):
    monkeypatch.setenv("FAKE_BENTOML_SECRETS", json.dumps([SECRET, {**SECRET, "name": "team-key"}]))
    deploy("svc:v1", "--secret", "team-key")  # --secret over $BENTOCLOUD_SECRET: create
    deploy("svc:v2", "--secret", "team-key")  # and update
    commands = cloud.commands()
    changes = [c for c in commands if c[0] == "deploy" or c[:2] == ["deployment", "update"]]
    assert len(changes) == 2
    assert all(c[c.index("--secret") + 1] == "team-key" for c in changes)
    assert not any(KEY_VALUE in arg for command in commands for arg in command)
    assert not any(arg.startswith("LLMOPS_TEST_API_KEY") for command in commands for arg in command)


def test_deploy_waits_until_the_new_bento_runs(cloud, monkeypatch):
    cloud.current.write_text("svc:v1")
    rollout = ["image-building", "deploying", "deploying", "running"]
    monkeypatch.setenv("FAKE_BENTOML_ROLLOUTS", json.dumps({"svc:v2": rollout}))
    deploy("svc:v2")
    commands = cloud.commands()
    update = commands.index(
        ["deployment", "update", "llmops", "--bento", "svc:v2", "--secret", "llmops-api-key"]
    )
    assert commands[update + 1 :] == [GET] * 4  # one look per status, until running
    assert (cloud.bento(), cloud.status()) == ("svc:v2", "running")


def test_the_wait_sleeps_between_looks_and_gives_up_at_the_timeout(cloud, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_ROLLOUTS", json.dumps({"svc:v2": ["deploying"]}))
    clock = FakeClock()
    wait = release.Wait(timeout=30, interval=10, sleep=clock.sleep, clock=lambda: clock.now)
    with pytest.raises(release.ReleaseError) as failed:
        release.deploy("svc:v2", "llmops", "llmops-api-key", "LLMOPS_TEST_API_KEY", wait=wait)
    assert str(failed.value) == (
        "'llmops' not running svc:v2 after 30 s: last status deploying (Bento svc:v2); "
        "put svc:v1 back"
    )
    gets = [c for c in cloud.commands() if c == GET]
    assert len(gets) == 1 + 3 + 2  # the first read, 3 looks at svc:v2, 2 at svc:v1 put back
    assert clock.slept == [10] * 5
    assert cloud.bento() == "svc:v1"


@pytest.mark.parametrize(
    ("rollout", "timeout", "says"),
    [
        (["deploying", "failed"], "900", "'llmops' did not start svc:v2: status failed"),
        (["image-building", "image-build-failed"], "900", "status image-build-failed"),
        (["deploying", "unhealthy"], "900", "status unhealthy"),
        (["deploying"], "0", "not running svc:v2 after 0 s: last status deploying"),
    ],
)
def test_a_failed_rollout_puts_the_previous_bento_back(
    cloud, capsys, monkeypatch, rollout, timeout, says
):
    cloud.current.write_text("svc:v1")
    rollouts = {"svc:v2": rollout, "svc:v1": ["running"]}  # putting back waits as long
    monkeypatch.setenv("FAKE_BENTOML_ROLLOUTS", json.dumps(rollouts))
    with pytest.raises(SystemExit) as exited:
        deploy("svc:v2", "--timeout", timeout)
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert says in err
    assert err.rstrip().endswith("; put svc:v1 back")
    assert ["deployment", "update", "llmops", "--bento", "svc:v1"] in cloud.commands()
    assert (cloud.bento(), cloud.status()) == ("svc:v1", "running")
    assert recorded() == {
        "deployment": "llmops",
        "previous": None,
        "deployed": "svc:v1",
        "rolled_back": True,
    }


def test_a_failed_update_puts_the_previous_bento_back(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_FAIL", "deployment update llmops --bento svc:v2")
    with pytest.raises(SystemExit):
        deploy("svc:v2")
    assert (
        "could not deploy svc:v2 to 'llmops' (see above); put svc:v1 back"
        in capsys.readouterr().err
    )
    assert cloud.bento() == "svc:v1"


def test_when_putting_back_fails_too_the_previous_bento_stays_recorded(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_FAIL", "deployment update")
    with pytest.raises(SystemExit):
        deploy("svc:v2")
    assert "putting svc:v1 back failed too" in capsys.readouterr().err
    assert recorded()["previous"] == "svc:v1"  # make rollback-cloud can try again


def test_a_failing_first_deploy_terminates_the_deployment(cloud, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_BENTOML_ROLLOUTS", json.dumps({"svc:v1": ["deploying", "failed"]}))
    with pytest.raises(SystemExit) as exited:
        deploy("svc:v1")
    assert exited.value.code == 1
    assert "status failed; terminated 'llmops'" in capsys.readouterr().err
    assert cloud.commands()[-1] == ["deployment", "terminate", "llmops"]
    assert cloud.status() == "terminated"

    # the terminated deployment runs nothing: the next deploy has no Bento to put back
    monkeypatch.delenv("FAKE_BENTOML_ROLLOUTS")
    deploy("svc:v2")
    assert recorded() == {
        "deployment": "llmops",
        "previous": None,
        "deployed": "svc:v2",
        "rolled_back": False,
    }
    assert [
        "deployment",
        "update",
        "llmops",
        "--bento",
        "svc:v2",
        "--secret",
        "llmops-api-key",
    ] in cloud.commands()


def test_latest_is_deployed_as_the_version_in_the_local_store(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_LOCAL", json.dumps({"svc": "v9"}))
    deploy("svc:latest")  # BentoCloud reports svc:v9: the wait must look for that
    assert [
        "deployment",
        "update",
        "llmops",
        "--bento",
        "svc:v9",
        "--secret",
        "llmops-api-key",
    ] in cloud.commands()
    assert recorded()["deployed"] == "svc:v9"
    with pytest.raises(SystemExit):
        deploy("other:latest")
    assert "no Bento other:latest in the local store" in capsys.readouterr().err
    assert cloud.commands() == [SECRET_LIST, ["get", "other:latest", "-o", "json"]]


def test_rollback_without_a_recorded_deploy_fails_clearly(cloud, capsys):
    with pytest.raises(SystemExit):
        release.main(["rollback", "--name", "llmops"])
    assert "no deploy recorded in .release/previous.json" in capsys.readouterr().err
    assert cloud.commands() == []


def test_a_deployment_that_cannot_be_read_is_not_touched(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_FAIL", "deployment get")
    with pytest.raises(SystemExit):
        deploy("svc:v2")
    assert "unauthorized: invalid API token" in capsys.readouterr().err
    assert cloud.commands() == [SECRET_LIST, GET]
    assert not Path(".release/previous.json").exists()


def test_without_credentials_the_cli_refuses_and_nothing_is_recorded(cloud, capsys, monkeypatch):
    monkeypatch.delenv("BENTOML_CLOUD_API_KEY")
    with pytest.raises(SystemExit):
        deploy("svc:v2")
    assert "No cloud context default found" in capsys.readouterr().err
    assert not Path(".release/previous.json").exists()


def test_write_record_writes_the_release_as_json(tmp_path):
    path = release.write_record(
        tmp_path / "out" / "release.json", release.Release("llmops", "svc:v1", "svc:v2")
    )
    assert json.loads(path.read_text()) == {
        "deployment": "llmops",
        "previous": "svc:v1",
        "deployed": "svc:v2",
        "rolled_back": False,
    }


def test_the_image_target_runs_nothing(cloud, capsys):
    release.main(["deploy", "--bento", "svc:v1", "--name", "llmops", "--target", "image"])
    assert "pushing the image is the deployment" in capsys.readouterr().out
    assert cloud.commands() == []


@pytest.mark.parametrize(
    ("bento", "name"),
    [
        ("svc:v1; rm -rf /", "llmops"),
        ("svc:-n", "llmops"),
        ("svc:v1", "Llmops"),
        ("svc:v1", "llmops-"),
    ],
)
def test_deploy_refuses_odd_tags_and_names_before_running_anything(cloud, bento, name):
    with pytest.raises(SystemExit):
        release.main(["deploy", "--bento", bento, "--name", name])
    assert cloud.commands() == []


def test_plan_reports_features_as_booleans_only(tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A fake docker whose engine answers `docker info` (no engine runs here).
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "docker").chmod(0o755)
    out = tmp_path / "github_output"
    out.write_text("earlier=1\n")
    secrets = {
        "DVC_REMOTE": "s3://bucket/dvc",
        "MLFLOW_TRACKING_URI": "https://bob:s3cret@mlflow.example.com",
        "BENTOML_CLOUD_API_KEY": "key-123456",
        "IMAGE_REPOSITORY": "ghcr.io/org/app",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    release.main(["plan"])
    printed = capsys.readouterr().out
    expected = (
        "dvc_remote=true\nmlflow_server=true\nbentocloud=true\nregistry=true\ncontainer=true\n"
    )
    assert printed == expected
    assert out.read_text() == "earlier=1\n" + expected  # appended, as GitHub expects
    assert not any(value in printed for value in secrets.values())


def test_a_docker_cli_without_an_engine_is_no_container_engine(tmp_path):
    (tmp_path / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2; exit 1\n"
    )
    (tmp_path / "docker").chmod(0o755)
    assert release.plan({"PATH": str(tmp_path)})["container"] is False


def test_plan_of_a_bare_environment_is_all_false(tmp_path):
    env = {
        "PATH": str(tmp_path),
        "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",
        "IMAGE_REPOSITORY": "llmops-service",  # the Makefile's local default: no registry
    }
    assert release.plan(env) == dict.fromkeys(
        ("dvc_remote", "mlflow_server", "bentocloud", "registry", "container"), False
    )


@pytest.mark.parametrize(
    ("repository", "sha"),
    [
        ("ghcr.io/org/app", "0123abc"),
        ("localhost:5000/team/my-app", "0123456789abcdef0123456789abcdef01234567"),
        ("app", "deadbeef"),
        ("registry.example.com/a__b/c.d", "abcdef1"),
    ],
)
def test_image_tag_joins_valid_parts(repository, sha, capsys):
    release.main(["image-tag", "--repository", repository, "--sha", sha])
    assert capsys.readouterr().out == f"{repository}:{sha}\n"


@pytest.mark.parametrize(
    ("repository", "sha", "bad"),
    [
        ("ghcr.io/Org/app", "0123abc", "repository 'ghcr.io/Org/app'"),
        ("ghcr.io/org/app;id", "0123abc", "repository 'ghcr.io/org/app;id'"),
        ("ghcr.io/org/$(id)", "0123abc", "repository 'ghcr.io/org/$(id)'"),
        ("ghcr.io/org/app ", "0123abc", "repository 'ghcr.io/org/app '"),
        ("/app", "0123abc", "repository '/app'"),
        ("", "0123abc", "repository ''"),
        ("ghcr.io/org/app", "0123ab", "sha '0123ab'"),
        ("ghcr.io/org/app", "0123abg", "sha '0123abg'"),
        ("ghcr.io/org/app", "A" * 7, "sha 'AAAAAAA'"),
        ("ghcr.io/org/app", "0" * 41, f"sha '{'0' * 41}'"),
    ],
)
def test_image_tag_refuses_a_bad_value_naming_it(repository, sha, bad, capsys):
    with pytest.raises(SystemExit) as exited:
        release.main(["image-tag", "--repository", repository, "--sha", sha])
    assert exited.value.code == 1
    assert f"bad {bad}" in capsys.readouterr().err


def test_a_github_output_value_cannot_forge_another_key(tmp_path):
    out = tmp_path / "github_output"
    with pytest.raises(release.ReleaseError, match="line break"):
        release.github_output({"version": "2\nbentocloud=true"}, {"GITHUB_OUTPUT": str(out)})
    assert not out.exists()
