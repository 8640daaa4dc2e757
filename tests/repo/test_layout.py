"""The library's layout: every module sits in a subpackage, and imports go the way each
subpackage's docstring allows ("May import: ..."); nothing imports a stage."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "src" / "llmops"
MAX_TOP_LEVEL = 12
# Old entry points kept for `python -m`, each pointing to where it moved.
MOVED = {"smoke.py": "llmops.ship.smoke"}


def allowed_imports(package: Path) -> set[str]:
    """The subpackages a package's docstring says it may import."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    found = re.search(r"^May import: (.+?)\.?$", doc, re.M)
    if not found:
        raise AssertionError(f"{package.name}/__init__.py: no 'May import: ...' line")
    listed = found.group(1).strip()
    return set() if listed.startswith("nothing") else {p.strip() for p in listed.split(",")}


def imported(path: Path) -> set[str]:
    """The llmops modules a file imports (`from llmops.x import y`, x a subpackage, imports
    the module llmops.x.y)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("llmops")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("llmops"):
            if node.module.count(".") == 1:
                names |= {f"{node.module}.{a.name}" for a in node.names}
            else:
                names.add(node.module)
    return names


def violations(library: Path) -> list[str]:
    """One line per import a subpackage's docstring does not allow, per stage imported
    from the library, and per module outside a subpackage."""
    packages = sorted(p for p in library.iterdir() if (p / "__init__.py").exists())
    names = {p.name for p in packages}
    found = [
        f"{p.relative_to(library)}: a module outside a subpackage"
        for p in library.glob("*.py") if p.name not in {"__init__.py", *MOVED}
    ]  # fmt: skip
    for package in packages:
        allowed = (
            set(names) if package.name == "stages" else allowed_imports(package) | {package.name}
        )
        for path in sorted(package.rglob("*.py")):
            for name in sorted(imported(path)):
                parts = name.split(".")
                if len(parts) < 2 or parts[1] not in names:
                    continue
                if parts[1] == "stages" and package.name != "stages":
                    found.append(f"{path.relative_to(library)}: imports a stage ({name})")
                elif parts[1] not in allowed:
                    found.append(
                        f"{path.relative_to(library)}: imports {name}, not allowed for {package.name}/"
                    )
    return found


def test_every_module_sits_in_a_subpackage_and_imports_go_one_way() -> None:
    assert violations(LIBRARY) == []
    entries = [p.name for p in LIBRARY.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= MAX_TOP_LEVEL, sorted(entries)


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("report/data_report.py", "from llmops.stages.prep import PrepResult",
         "report/data_report.py: imports a stage (llmops.stages.prep)"),
        ("config/task.py", "from llmops.data import redact",
         "config/task.py: imports llmops.data.redact, not allowed for config/"),
        ("serve/api.py", "import llmops.report.escape",
         "serve/api.py: imports llmops.report.escape, not allowed for serve/"),
    ],
)  # fmt: skip
def test_a_forbidden_import_is_reported(
    tmp_path: Path, module: str, line: str, expected: str
) -> None:
    copy = tmp_path / "llmops"
    shutil.copytree(LIBRARY, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a") as f:
        f.write(f"\n{line}\n")
    assert violations(copy) == [expected]


def test_a_module_outside_a_subpackage_is_reported(tmp_path: Path) -> None:
    copy = tmp_path / "llmops"
    shutil.copytree(LIBRARY, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "helpers.py").write_text('"""Loose."""\n')
    assert violations(copy) == ["helpers.py: a module outside a subpackage"]


def test_a_moved_entry_point_still_runs_and_says_where_it_went() -> None:
    import subprocess
    import sys

    for name, target in MOVED.items():
        old = f"llmops.{name.removesuffix('.py')}"
        done = subprocess.run(
            [sys.executable, "-m", old, "--help"], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert f"moved to {target}" in done.stderr
        assert "usage:" in done.stdout


def test_every_knob_in_params_yaml_has_one_comment_line_and_its_section_a_docs_page():
    # The explanations live in docs/parameters.md; params.yaml keeps one line per knob.
    lines = (ROOT / "params.yaml").read_text().splitlines()
    anchors = {
        "#" + re.sub(r"[^\w -]", "", h.lstrip("#").strip().lower()).replace(" ", "-")
        for h in (ROOT / "docs" / "parameters.md").read_text().splitlines()
        if h.startswith("#")
    }
    undocumented, long_comments = [], []
    for i, line in enumerate(lines):
        code = line.split("#", 1)[0].rstrip()
        if not re.match(r"^\s*[\w-]+:", code):
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            undocumented.append(code.strip())
        if above.startswith("#") and i > 1 and lines[i - 2].strip().startswith("#"):
            long_comments.append(code.strip())
        if not line.startswith(" ") and not code.endswith("{}"):
            linked = re.search(r"docs/parameters\.md(#[\w-]+)", above)
            assert linked and linked.group(1) in anchors, f"{code}: no docs/parameters.md link"
    assert undocumented == [] and long_comments == [], (undocumented, long_comments)
