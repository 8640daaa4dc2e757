"""The repository's own plumbing: Makefile help, CI entry point, workflows, hooks, imports,
and values passed to make that are never run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent


def run(*cmd: str, cwd: Path, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=check)


def make_sources(repo: Path) -> str:
    """The Makefile and the file it includes (ci.mk: what the workflows call)."""
    return "".join((repo / name).read_text() for name in ("Makefile", "ci.mk"))


def test_make_help_lists_every_target_grouped(repo):
    text = make_sources(repo)
    # Every rule, whatever its name holds (digits: test-e2e), by a pattern of its own: not
    # help's, so that a help that drops a target fails here.
    targets = set(re.findall(r"^([^\s:#=$.][^\s:#=$]*):(?!=)", text, flags=re.M))
    documented = set(re.findall(r"^([^\s:#=$.][^\s:#=$]*):(?!=).*## ", text, flags=re.M))
    assert targets == documented, f"targets without ## help: {targets - documented}"
    assert {"test-e2e", "repro", "test", "reviewed", "comment"} <= targets
    shown = run("make", "--no-print-directory", "help", cwd=repo, check=True).stdout
    listed = [line.split()[0] for line in shown.splitlines() if line.startswith("  ")]
    assert sorted(listed) == sorted(targets)  # each once
    headings = [line for line in shown.splitlines() if line and not line.startswith(" ")]
    assert headings == ["Set-up:", "Pipeline:", "Review:", "Serve:", "Watch:", "Develop:",
                        "CI and release (ci.mk):"]  # fmt: skip
    workflows = (repo / "ci.mk").read_text()
    for target in ("reviewed", "promote", "comment", "push-image"):  # CI plumbing lives there
        assert re.search(rf"^{target}:", workflows, re.M), target


def test_ci_runs_readme_test_command_and_lint(repo):
    readme = (repo / "README.md").read_text()
    ci = (repo / ".ci" / "run").read_text()
    assert "make test" in readme and "make repro" in readme
    steps = [line.strip() for line in ci.splitlines() if line.startswith("make ")]
    assert steps == ["make install", "make lint", "make test"]


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
        "      - uses: actions/checkout@v4\n        with:\n          no-such-input: 1\n"
    )
    done = run(str(BIN / "actionlint"), str(bad), cwd=tmp_path)
    assert done.returncode != 0
    assert "no-such-input" in done.stdout and "untrusted" in done.stdout


def test_pre_commit_config_is_valid_and_guards_large_files(repo, tmp_path):
    run(str(BIN / "pre-commit"), "validate-config", cwd=repo, check=True)
    hooks = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert {"ruff-check", "ruff-format", "check-added-large-files"} <= {h["id"] for h in hooks}
    # Run the guard exactly as configured (its own executable and arguments).
    entry = next(h["entry"] for h in hooks if h["id"] == "check-added-large-files").split()
    run("git", "init", "-q", cwd=tmp_path, check=True)
    for name, size in (("weights.safetensors", 700_000), ("small.json", 100_000)):
        (tmp_path / name).write_bytes(b"\0" * size)
        run("git", "add", name, cwd=tmp_path, check=True)
    guard = run(
        str(BIN / Path(entry[0]).name),
        *entry[1:],
        "weights.safetensors",
        "small.json",
        cwd=tmp_path,
    )
    assert guard.returncode == 1
    assert "weights.safetensors" in guard.stdout and "small.json" not in guard.stdout


def test_dvc_config_is_offline_with_a_local_default_remote(repo):
    config = (repo / ".dvc" / "config").read_text()
    assert re.search(r"analytics\s*=\s*false", config)
    assert re.search(r"remote\s*=\s*local", config)
    url = re.search(r"url\s*=\s*(\S+)", config).group(1)
    assert not (repo / ".dvc" / url).resolve().is_relative_to(repo), "remote must be outside"


MODULES = sorted(
    ".".join(p.relative_to(Path(__file__).parents[2] / "src").with_suffix("").parts)
    for p in (Path(__file__).parents[2] / "src" / "llmops").rglob("*.py")
)


# One fresh interpreter imports every module in turn and notes, after each, what the import
# did (a process per module costs a minute of torch imports). What one import does is undone
# before the next, so each module is judged on its own; one already imported by an earlier
# module is judged with it (the message says so).
IMPORTS = """
import importlib, json, logging, os, shutil, sys
found = {}
for name in sys.argv[1:]:
    before = set(sys.modules)
    try:
        importlib.import_module(name)
        problems = []
    except Exception as err:
        problems = [f"import failed: {err!r}"]
    if logging.getLogger().handlers:
        problems.append("logging configured at import")
        logging.getLogger().handlers.clear()
    for entry in os.listdir("."):
        problems.append(f"created {entry!r} at import")
        shutil.rmtree(entry) if os.path.isdir(entry) else os.remove(entry)
    if problems and name in before:
        problems.append("(imported earlier, by another module: look there too)")
    found[name] = problems
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def import_effects(tmp_path_factory) -> dict[str, list[str]]:
    names = [m.removesuffix(".__init__") for m in MODULES]
    done = run(sys.executable, "-c", IMPORTS, *names, cwd=tmp_path_factory.mktemp("imports"))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", [m.removesuffix(".__init__") for m in MODULES])
def test_importing_does_nothing(module, import_effects):
    assert import_effects[module] == []


def test_no_generated_or_secret_files_are_tracked(repo):
    if not shutil.which("git") or not (repo / ".git").exists():
        pytest.fail("tests run in a git checkout; clone the repository")
    tracked = run("git", "ls-files", cwd=repo, check=True).stdout.split()
    banned = re.compile(
        r"(^|/)(\.venv|mlruns|__pycache__)/|mlflow\.db$|\.(safetensors|bin|pt|pkl)$|^data/prepared/"
    )
    assert not [t for t in tracked if banned.search(t)]


# --- values people and CI pass to make are never run: not by make, not by the shell --------


def make_targets(repo: Path) -> list[str]:
    return re.findall(r"^([a-z][a-z0-9-]*):.*## ", make_sources(repo), flags=re.M)


@pytest.mark.parametrize("target", ["gate", "report"])
def test_a_baseline_payload_is_refused_and_never_runs(repo, tmp_path, target):
    marker = tmp_path / "pwned"
    for value in ["x;echo INJECTED", f"$(touch {marker})", f"$(shell touch {marker})",
                  f"`touch {marker}`", f"--output={marker}"]:  # fmt: skip
        done = run("make", "-s", "-o", ".venv/.installed", target, f"BASELINE={value}", cwd=repo)
        out = done.stdout + done.stderr
        assert done.returncode != 0, out
        assert f"{target}: baseline ref {value!r} is not a valid git ref name" in out, out
        assert "INJECTED" not in out.splitlines() and not marker.exists(), value


def test_make_never_expands_a_value_given_on_the_command_line(repo, tmp_path):
    # make -n expands every recipe without running it: a `$(shell ...)` in any variable a
    # person sets (BASELINE=, PYTHON=, REQUIRE_SERVER=, ...) must stay text.
    marker = tmp_path / "pwned"
    names = re.findall(r"^([A-Z_]+) \?=", make_sources(repo), flags=re.M)
    assert {"BASELINE", "DATA", "PYTHON", "TORCH_INDEX", "SEEDS", "PROFILE"} <= set(names)
    payload = f"$(shell touch {marker})"
    done = run("make", "-n", "-k", "-o", ".venv/.installed", *make_targets(repo),
               *(f"{name}={payload}" for name in [*names, "CI"]), cwd=repo)  # fmt: skip
    assert not marker.exists(), done.stdout + done.stderr
    assert '--baseline="$BASELINE"' in done.stdout  # recipes quote it, from the environment


def test_a_command_line_value_still_reaches_recipes_as_text(repo, tmp_path):
    # make exports what the command line sets (PYTEST_ADDOPTS=-x for make test): taking
    # values literally must not stop that.
    probe = tmp_path / "probe.mk"
    probe.write_text('probe:\n\t@printf \'%s|%s\\n\' "$$PYTEST_ADDOPTS" "$$BASELINE"\n')
    done = run("make", "-s", "-f", "Makefile", "-f", str(probe), "probe",
               "PYTEST_ADDOPTS=-x -q", "BASELINE=$(shell echo no)", cwd=repo)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "-x -q|$(shell echo no)\n"


# --- requirements.lock: every file make install takes is hash-checked -----------------------

LOCK_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[^\s;+]+(?: --hash=sha256:[0-9a-f]{64})+")


def lock_entries(text: str) -> list[str]:
    """A requirements file's requirements, continuation lines joined as pip joins them."""
    joined = re.sub(r"[ \t]*\\\n[ \t]*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def install_recipe(repo: Path) -> list[str]:
    """The commands `make install` runs on a clean clone (make -n), one per line."""
    done = run("make", "-n", "-B", ".venv/.installed", cwd=repo, check=True)
    return re.sub(r"\\\n", " ", done.stdout).splitlines()


def test_every_locked_package_is_pinned_with_hashes(repo):
    entries = lock_entries((repo / "requirements.lock").read_text())
    assert len(entries) > 200
    assert [e[:120] for e in entries if not LOCK_PIN.fullmatch(e)] == []
    # make install takes these first, by name (pip and setuptools build what has no wheel)
    assert {"pip", "setuptools", "torch"} <= {e.split("==")[0].lower() for e in entries}


def test_the_lock_keeps_the_hash_of_torchs_cpu_wheel(repo):
    # PyPI's Linux torch is the CUDA build; CI and this project's machines take the CPU wheel
    # (PyTorch's CPU index, or a local copy of the same file), whose hash PyPI does not list.
    text = (repo / "requirements.lock").read_text()
    torch = next(e for e in lock_entries(text) if e.startswith("torch=="))
    noted = re.findall(
        r"^# torch==\S+ sha256:([0-9a-f]{64}) is torch-[\d.]+\+cpu-cp311-cp311-\S+: not on PyPI",
        text, flags=re.M,
    )  # fmt: skip
    assert noted and set(noted) <= set(re.findall(r"--hash=sha256:(\w+)", torch))


def test_make_install_checks_every_hash(repo):
    installs = [c for c in install_recipe(repo) if " -m pip install " in c]
    unchecked = [c for c in installs if "--require-hashes" not in c]
    # Only the project itself (an editable of this checkout, no dependencies) has no hash.
    assert len(unchecked) == 1 and re.search(r"--no-deps .*-e \.$", unchecked[0]), unchecked
    whole = [c for c in installs if c.endswith("-r requirements.lock")]
    assert len(whole) == 1 and "--require-hashes" in whole[0]
    # What is built from source is built with the lock's setuptools, not an unchecked download.
    assert all("--no-build-isolation" in c for c in [*whole, *unchecked])


@pytest.mark.parametrize("name", ["pip", "setuptools", "torch"])
def test_make_install_hands_pip_a_package_whole_entry(repo, name):
    # make install feeds pip one package's lines of the lock (<(sed ...)) before the rest.
    recipe = "\n".join(install_recipe(repo))
    extract = re.search(rf"<\((sed -n '/\^{name}==/[^)]*)\)", recipe)
    assert extract, f"make install takes no {name} entry from the lock"
    got = run("bash", "-c", extract[1], cwd=repo, check=True).stdout
    lock = (repo / "requirements.lock").read_text()
    assert lock_entries(got) == [e for e in lock_entries(lock) if e.startswith(f"{name}==")]
