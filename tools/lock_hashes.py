"""Turn a `pip freeze` into requirements.lock: each package's `name==version` with one
`--hash=sha256:...` line per file, for `pip install --require-hashes -r requirements.lock`.

Run (what `make lock` does, in the venv it resolved the set into):
    pip freeze --all --exclude llmops-template | python tools/lock_hashes.py \
      --report report.json --keep requirements.lock > new.lock

A package's hashes are those of every file PyPI has for its version (every platform and
Python, as `pip-compile --generate-hashes` writes them) and of each file pip took elsewhere
(`--report`, from `pip install --report`: torch's CPU wheel from a find-links folder or
TORCH_INDEX). A comment line names each file PyPI lacks; `--keep` (the lock being replaced)
carries those over for an unchanged version, so a lock made on a machine where pip took
torch from PyPI still installs the CPU wheel. A local version label is dropped from the pin
(torch==2.13.0+cpu pins torch==2.13.0, which PEP 440 matches to the CPU build and to PyPI's),
and PyPI's files for the platforms of such a build are left out: they are another build
(torch's CUDA one, whose dependencies the lock does not pin), and pip prefers a file whose
hash its index states over a find-links file of the build that was locked.
Standard library and `packaging` only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

PYPI = "https://pypi.org/simple"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;+]+)(\+\S+)?")
# The comment above a package for each of its files PyPI does not have.
ELSEWHERE = re.compile(r"^# (\S+)==(\S+) sha256:([0-9a-f]{64}) is (\S+): not on PyPI, from \S+$")

Notes = dict[str, str]  # sha256 -> the ELSEWHERE comment naming that file


def pypi_files(name: str, version: str, index: str = PYPI) -> dict[str, str]:
    """{sha256: file name} of every file `index` (PEP 691 JSON) has for `name` at `version`."""
    request = urllib.request.Request(
        f"{index}/{canonicalize_name(name)}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return {}
        raise
    wanted = Version(version)
    return {
        f["hashes"]["sha256"]: f["filename"] for f in files if _version(f["filename"]) == wanted
    }


def _version(filename: str) -> Version | None:
    """The version in a wheel or sdist file name, None for any other file."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _platforms(filename: str) -> set[str]:
    """The platforms a wheel is for, any manylinux folded into linux: {"linux_x86_64"}."""
    if not filename.endswith(".whl"):
        return set()
    tags = parse_wheel_filename(filename)[3]
    fold = re.compile(r"^(many|musl)linux(1|2010|2014|_\d+_\d+)_")
    return {fold.sub("linux_", tag.platform) for tag in tags} - {"any"}


def _labelled_platforms(notes: Iterable[str]) -> set[str]:
    """The platforms of the builds with a local version label (torch+cpu) that `notes` name."""
    files = [ELSEWHERE.match(note)[4] for note in notes]
    return set().union(*(_platforms(f) for f in files if (v := _version(f)) and v.local))


def reported_notes(report: Path) -> dict[str, Notes]:
    """{canonical name: notes} for the archives a `pip install --report` took."""
    found: dict[str, Notes] = {}
    for item in json.loads(report.read_text())["install"]:
        info = item["download_info"]
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if digest:  # an editable or a directory has none
            name, version = item["metadata"]["name"], item["metadata"]["version"].split("+")[0]
            url = info["url"]
            filename = unquote(url.rsplit("/", 1)[-1].split("#")[0])
            note = f"# {name}=={version} sha256:{digest} is {filename}: not on PyPI, from {url}"
            found.setdefault(canonicalize_name(name), {})[digest] = note
    return found


def kept_notes(lock: Path) -> dict[tuple[str, str], Notes]:
    """{(canonical name, version): notes} of the ELSEWHERE comments of an existing lock."""
    kept: dict[tuple[str, str], Notes] = {}
    for line in lock.read_text().splitlines() if lock.exists() else []:
        if note := ELSEWHERE.match(line):
            kept.setdefault((canonicalize_name(note[1]), note[2]), {})[note[3]] = line
    return kept


def entry(name: str, version: str, on_pypi: dict[str, str], elsewhere: Notes) -> list[str]:
    """The lock's lines for one package: comments for files PyPI lacks, then the pin."""
    elsewhere = {digest: note for digest, note in elsewhere.items() if digest not in on_pypi}
    rebuilt = _labelled_platforms(elsewhere.values())
    digests = sorted({d for d, file in on_pypi.items() if not _platforms(file) & rebuilt})
    digests += sorted(elsewhere)
    if not digests:
        raise SystemExit(f"lock_hashes: no file of {name}=={version} found anywhere to hash")
    pin = " \\\n    ".join([f"{name}=={version}", *(f"--hash=sha256:{d}" for d in digests)])
    return [*sorted(elsewhere.values()), pin]


def lock_lines(pins: list[tuple[str, str]], reported: dict, kept: dict) -> list[str]:
    """The lock's lines for `pins` ([(name, version)], local labels already dropped)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        on_pypi = list(pool.map(lambda pin: pypi_files(*pin), pins))
    lines = []
    for (name, version), files in zip(pins, on_pypi, strict=True):
        key = canonicalize_name(name)
        elsewhere = {**reported.get(key, {}), **kept.get((key, version), {})}
        lines += entry(name, version, files, elsewhere)
    return lines


HEADER = """\
# Generated by 'make lock' (tools/lock_hashes.py) from pyproject.toml; do not edit by hand.
# make install runs pip install --require-hashes -r requirements.lock: every file pip takes
# must match a hash below. Each package lists every file PyPI has for its version; a comment
# names each file that is not on PyPI (torch's CPU build) and where make lock found it.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, action="append", default=[])
    parser.add_argument("--keep", type=Path, help="the lock being replaced")
    args = parser.parse_args(argv)
    pins = sorted(
        ((m[1], m[2]) for line in sys.stdin if (m := PIN.match(line))),
        key=lambda pin: canonicalize_name(pin[0]),
    )
    if not pins:  # a failed `pip freeze` upstream of the pipe: keep the old lock
        raise SystemExit("lock_hashes: no name==version pins on stdin")
    reported: dict[str, Notes] = {}
    for report in args.report:
        for name, notes in reported_notes(report).items():
            reported.setdefault(name, {}).update(notes)
    kept = kept_notes(args.keep) if args.keep else {}
    sys.stdout.write(HEADER + "\n".join(lock_lines(pins, reported, kept)) + "\n")


if __name__ == "__main__":
    main()
