"""Overlay a params profile onto params.yaml (make profile PROFILE=profiles/gpu.yaml).

Run: python -m llmops.project.profile profiles/gpu.yaml --params params.yaml

A profile is a partial params file: each leaf it names replaces the same key of
params.yaml (mappings are merged key by key, lists and scalars replaced), keeping the
file's comments. The result must load (`llmops.config.params.load_params`); if it does not,
params.yaml is left as it was and the error names the key. A profile may only name keys
params.yaml has, so a typo cannot add a knob that nothing reads.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from llmops.config.params import load_params
from llmops.config.paramsfile import ParamsError, read_text, read_yaml
from llmops.project.declaration import flow, yaml_tool


def overlay(target, profile: dict, where: str = "") -> None:
    """Replace `target`'s leaves with `profile`'s, in place; unknown keys are an error."""
    for key, value in profile.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in target:
            raise ParamsError(f"profile: {path}: not a key of params.yaml")
        if isinstance(value, dict) and isinstance(target[key], dict):
            overlay(target[key], value, path)
        else:
            target[key] = flow(value) if isinstance(value, list) else value


def apply(profile_path: Path, params_path: Path) -> None:
    """Write params.yaml with the profile applied, or raise leaving it unchanged."""
    # Read as load_params reads params.yaml (YAML 1.2 numbers such as 3e-4, merges, no
    # duplicate keys), so a value means here what it will mean there.
    profile = read_yaml(read_text(profile_path), str(profile_path))
    if not isinstance(profile, dict):
        raise ParamsError(f"{profile_path}: expected a mapping of params sections")
    text = read_text(params_path)
    if not isinstance(read_yaml(text, str(params_path)), dict):
        raise ParamsError(f"{params_path}: expected a mapping of params sections")
    document = round_trip(text, params_path)
    overlay(document, profile)
    tool = yaml_tool()
    buffer = io.StringIO()
    tool.dump(document, buffer)
    candidate = params_path.with_suffix(".profile.tmp")
    candidate.write_text(buffer.getvalue(), encoding="utf-8")
    try:
        load_params(candidate)
    except ParamsError as err:
        candidate.unlink()
        raise ParamsError(f"{profile_path} applied to {params_path}: {err}") from None
    candidate.replace(params_path)


def round_trip(text: str, path: Path):
    """params.yaml as ruamel's round-trip document (comments kept); ParamsError if ruamel
    cannot read what PyYAML could."""
    from ruamel.yaml.error import YAMLError

    try:
        return yaml_tool().load(text)
    except (YAMLError, ValueError) as err:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        apply(args.profile, args.params)
    except (ParamsError, OSError) as err:
        sys.exit(f"profile: {err}")
    print(f"{args.params}: {args.profile} applied")


if __name__ == "__main__":
    main()
