"""Release steps (llmops.release): the plan from the environment, the checked image tag,
and deploy/rollback on BentoCloud.

BentoCloud cannot be reached from a test, so the `bentoml` CLI is replaced by a small fake
executable put first on PATH (FAKE_BENTOML below): it appends its argv to a log and keeps
the deployment's current Bento in a file, answering `deployment get -o json` with canned
JSON the way BentoCloud's CLI does (and "not found" when there is no deployment yet).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from llmops import release

FAKE_BENTOML = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_BENTOML_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
current = Path(os.environ["FAKE_BENTOML_CURRENT"])
if not os.environ.get("BENTO_CLOUD_API_KEY"):  # the real CLI's credentials variable
    print("Error: [deployment] `get` failed: No cloud context default found", file=sys.stderr)
    sys.exit(1)
if os.environ.get("FAKE_BENTOML_FAIL") == " ".join(args[:2]):
    print("Error: unauthorized: invalid API token", file=sys.stderr)
    sys.exit(1)
if args[:2] == ["deployment", "get"]:
    if not current.exists():
        print(f"Error: [deployment] `get` failed: Deployment {{args[2]}} is not found", file=sys.stderr)
        sys.exit(1)
    print("using context __env__")  # a notice before the JSON, as the real CLI may print
    print(json.dumps({{"name": args[2], "bento": current.read_text(), "cluster": "gcp-us-1"}}, indent=2))
elif args[0] == "deploy":
    current.write_text(args[1])
elif args[:2] == ["deployment", "update"]:
    current.write_text(args[args.index("--bento") + 1])
"""


class FakeCloud:
    """The fake CLI's view: the commands it received and the Bento it runs now."""

    def __init__(self, root: Path) -> None:
        self.log, self.current = root / "bentoml.log", root / "current"

    def commands(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        self.log.unlink()
        return [json.loads(line) for line in lines]

    def bento(self) -> str | None:
        return self.current.read_text() if self.current.exists() else None


@pytest.fixture
def cloud(tmp_path, monkeypatch) -> FakeCloud:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "bentoml"
    fake.write_text(FAKE_BENTOML)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_BENTOML_LOG", str(tmp_path / "bentoml.log"))
    monkeypatch.setenv("FAKE_BENTOML_CURRENT", str(tmp_path / "current"))
    monkeypatch.setenv("BENTOML_CLOUD_API_KEY", "test-key")  # the project's secret name
    monkeypatch.delenv("BENTO_CLOUD_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    return FakeCloud(tmp_path)


def recorded() -> dict:
    return json.loads(Path(".release/previous.json").read_text())


def test_deploy_records_the_replaced_bento_and_rollback_restores_it(cloud, capsys):
    release.main(["deploy", "--bento", "svc:v1", "--name", "llmops"])
    assert cloud.commands() == [
        ["deployment", "get", "llmops", "-o", "json"],
        ["deploy", "svc:v1", "-n", "llmops"],  # no deployment yet: create it
    ]
    assert recorded() == {"deployment": "llmops", "previous": None, "deployed": "svc:v1"}

    release.main(["deploy", "--bento", "svc:v2", "--name", "llmops"])
    assert cloud.commands() == [
        ["deployment", "get", "llmops", "-o", "json"],
        ["deployment", "update", "llmops", "--bento", "svc:v2"],  # keeps its scaling config
    ]
    assert recorded()["previous"] == "svc:v1"
    assert cloud.bento() == "svc:v2"
    assert "previous: svc:v1" in capsys.readouterr().out

    release.main(["rollback", "--name", "llmops"])
    assert cloud.commands() == [["deployment", "update", "llmops", "--bento", "svc:v1"]]
    assert cloud.bento() == "svc:v1"
    assert "rolled back to svc:v1" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exited:
        release.main(["rollback", "--name", "llmops"])
    assert exited.value.code == 1
    assert "records no previous Bento for 'llmops'" in capsys.readouterr().err
    assert cloud.commands() == []


def test_rollback_without_a_recorded_deploy_fails_clearly(cloud, capsys):
    with pytest.raises(SystemExit):
        release.main(["rollback", "--name", "llmops"])
    assert "no deploy recorded in .release/previous.json" in capsys.readouterr().err
    assert cloud.commands() == []


def test_a_deployment_that_cannot_be_read_is_not_touched(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_FAIL", "deployment get")
    with pytest.raises(SystemExit):
        release.main(["deploy", "--bento", "svc:v2", "--name", "llmops"])
    assert "unauthorized: invalid API token" in capsys.readouterr().err
    assert cloud.commands() == [["deployment", "get", "llmops", "-o", "json"]]
    assert not Path(".release/previous.json").exists()


def test_without_credentials_the_cli_refuses_and_nothing_is_recorded(cloud, capsys, monkeypatch):
    monkeypatch.delenv("BENTOML_CLOUD_API_KEY")
    with pytest.raises(SystemExit):
        release.main(["deploy", "--bento", "svc:v2", "--name", "llmops"])
    assert "No cloud context default found" in capsys.readouterr().err
    assert not Path(".release/previous.json").exists()


def test_a_failed_update_still_leaves_the_previous_bento_recorded(cloud, capsys, monkeypatch):
    cloud.current.write_text("svc:v1")
    monkeypatch.setenv("FAKE_BENTOML_FAIL", "deployment update")
    with pytest.raises(SystemExit):
        release.main(["deploy", "--bento", "svc:v2", "--name", "llmops"])
    assert "could not deploy svc:v2" in capsys.readouterr().err
    assert recorded()["previous"] == "svc:v1"


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
