"""Helpers for the test_reliability_* files: what is on disk before and after, and the shape of an error."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import yaml


def snapshot(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (files or directories), keyed by path: equal means unchanged."""
    out: dict[str, str] = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_bad_input(result, *fragments: str, one_line: bool = True) -> str:
    """Exit status 2, a single ``error: ...`` line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no message on stderr"
    message = lines[-1]
    assert message.startswith("error: "), result.stderr
    if one_line:
        assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    record(message)
    return message


def record(message: str) -> None:
    """With RELIABILITY_MESSAGES=FILE, note (test, message) there: the source of docs/reliability.md."""
    target = os.environ.get("RELIABILITY_MESSAGES")
    if target:
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"test": test, "message": message}) + "\n")


def install_previous_model(trained_model: Path, target: Path) -> Path:
    """A model a previous `train` saved where the next one will write: it must survive every failure."""
    from sentiment.paths import remember_last_model

    shutil.copytree(trained_model, target)
    remember_last_model(target)
    return target


def edit_config(path: Path, **sections: dict) -> Path:
    """Merge ``sections`` (e.g. ``data={"path": ...}``) into a YAML config file."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(name, {}).update(values)
        else:
            raw[name] = values
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path
