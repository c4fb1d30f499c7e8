"""The README's config reference is generated from the schema: this fails when the two drift apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

from conftest import load_script
from sentiment.config import schema_rows

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_config_docs.py"


def _gen() -> ModuleType:
    return load_script("gen_config_docs")


def test_readme_config_reference_matches_schema() -> None:
    gen = _gen()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == gen.update_readme(readme), (
        "README.md's config reference is out of date: run python scripts/gen_config_docs.py"
    )


def test_every_schema_key_is_documented_with_default_and_meaning() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    gen = _gen()
    block = readme[readme.index(gen.START) : readme.index(gen.END)]
    for key, default, description in schema_rows():
        assert description, f"{key} has no description in the schema"
        row = f"| `{key}` | `{gen.code_cell(default)}` | {gen.text_cell(description)} |"
        assert row in block, f"{key} missing from the README reference, or its default or meaning is stale"


def test_check_mode_detects_drift(tmp_path: Path) -> None:
    gen = _gen()
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{gen.START}\n| `old.key` | `1` | gone |\n{gen.END}\n", encoding="utf-8")
    check = [sys.executable, str(SCRIPT), "--check", "--readme", str(stale)]
    result = subprocess.run(check, capture_output=True, text=True)
    assert result.returncode == 1 and "out of date" in result.stderr

    write = [sys.executable, str(SCRIPT), "--readme", str(stale)]
    assert subprocess.run(write, capture_output=True).returncode == 0
    fixed = stale.read_text(encoding="utf-8")
    assert "old.key" not in fixed and "`training.epochs`" in fixed and fixed.startswith("# x\n")
    assert subprocess.run(check, capture_output=True).returncode == 0
