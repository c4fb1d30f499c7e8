"""What users see: plain output off a terminal, JSON outputs, prediction tables and CSVs, config show /
validate, the report files and plots, help texts and shell completion."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
from pathlib import Path

import pytest
import yaml

from sentiment.config import Config, all_keys
from sentiment.plots import PLOT_FILES
from sentiment.progress import Reporter

# Control codes and the glyphs rich draws bars with: none may appear in plain (non-terminal) output.
CONTROL = re.compile(r"\x1b|\r")
BAR_GLYPHS = ("━", "╸", "╺", "█")
FAST = ["--set", "training.epochs=3", "--set", "word2vec.epochs=2"]
TEXTS = [
    "the film was wonderful and brilliant, loved the story",
    "the movie was awful and boring, hated the plot",
]


def _assert_plain(text: str) -> None:
    assert not CONTROL.search(text), f"control codes in plain output: {text!r}"
    assert not any(glyph in text for glyph in BAR_GLYPHS), f"a progress bar in plain output: {text!r}"


def test_train_off_a_terminal_prints_plain_lines(cli, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = cli(["train", "--config", tiny_config, "--output", out, *FAST])
    assert result.exit_code == 0, result.stderr
    _assert_plain(result.stderr)
    _assert_plain(result.stdout.replace("━", ""))  # the metric tables' header rules are not bars
    for line in (
        "device: cpu",
        "tokenise: 240 training texts",
        "encode: 400 texts into token ids",
        "word2vec epoch   2/2",
        "epoch   3/3  loss",
        "training: 3 epochs",
    ):
        assert line in result.stderr
    assert "time per stage:" in result.stderr and re.search(r"^\s+total\s+\d+\.\d\d s$", result.stderr, re.M)
    # results and the report's location on stdout, progress on stderr
    assert "accuracy" in result.stdout and "epoch" not in result.stdout
    assert f"model and report saved to {out.resolve()}" in result.stdout
    assert "loss.png" in result.stdout and "metrics.json" in result.stdout
    history = list(csv.DictReader((out / "history.csv").open(encoding="utf-8")))
    assert len(history) == 3 and {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(
        history[0]
    )
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert {"accuracy", "precision", "recall", "f1", "n"} <= set(metrics["test"])


def test_train_quiet_prints_results_only(cli, tiny_config: Path, tmp_path: Path) -> None:
    result = cli(["train", "--config", tiny_config, "--output", tmp_path / "model", "--quiet", *FAST])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "accuracy" in result.stdout and "model and report saved to" in result.stdout


def test_reporter_levels() -> None:
    def run(**kwargs: bool) -> str:
        stream = io.StringIO()
        reporter = Reporter(stream=stream, **kwargs)
        with reporter.stage("work"), reporter.bar("Bar", 3) as update:
            update(1, info="x")
            reporter.log("summary line")
            reporter.step("step line")
            reporter.detail("detail line")
            reporter.warn("careful")
        reporter.timing_table()
        return stream.getvalue()

    plain = run()
    _assert_plain(plain)
    assert "summary line" in plain and "step line" in plain and "detail line" not in plain
    assert "warning: careful" in plain and "time per stage:" in plain
    verbose = run(verbose=True)
    assert "detail line" in verbose and "stage work:" in verbose
    assert run(quiet=True, verbose=True) == "warning: careful\n"


def test_eval_json_is_one_object(cli, trained_model: Path) -> None:
    result = cli(["eval", "--model", trained_model, "--json"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("}\n")
    metrics = json.loads(result.stdout)
    assert {"accuracy", "precision", "recall", "f1", "n"} <= set(metrics)
    assert metrics["n"] == 80 and 0.0 <= metrics["accuracy"] <= 1.0


def test_eval_prints_tables_for_people(cli, trained_model: Path) -> None:
    result = cli(["eval", "--model", trained_model])
    assert result.exit_code == 0, result.stderr
    for text in ("accuracy", "precision", "recall", "f1", "Confusion matrix", "Per class", "support"):
        assert text in result.stdout
    _assert_plain(result.stdout.replace("━", ""))


def test_predict_json_lines(cli, trained_model: Path) -> None:
    result = cli(["predict", "--model", trained_model, "--json", *TEXTS])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    for row, text in zip(rows, TEXTS, strict=True):
        assert (
            row["text"] == text and row["label"] in ("positive", "negative") and 0 <= row["probability"] <= 1
        )
    assert [r["label"] for r in rows] == ["positive", "negative"]


def test_predict_reads_stdin(cli, trained_model: Path) -> None:
    result = cli(
        ["predict", "--model", trained_model, "--file", "-", "--json"], input="\n".join(TEXTS) + "\n\n"
    )
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == TEXTS


def test_predict_table_is_aligned(cli, trained_model: Path) -> None:
    result = cli(["predict", "--model", trained_model, *TEXTS])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "film" in line or "movie" in line]
    assert len(lines) == 2
    # the probability column ends at the same place on every row
    ends = {re.search(r"\d\.\d{4}", line).end() for line in lines}
    assert len(ends) == 1, result.stdout


def test_predict_csv_in_csv_out(cli, trained_model: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "review"])
        writer.writerows([[i, text] for i, text in enumerate(TEXTS)])
    target = tmp_path / "out" / "predictions.csv"
    result = cli(["predict", "--model", trained_model, "--file", source, "--output", target])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "2 predictions written" in result.stderr
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["0", "1"] and [r["review"] for r in rows] == TEXTS
    assert [r["label"] for r in rows] == ["positive", "negative"]
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)


def test_predict_text_file_to_csv_round_trips_every_text(cli, trained_model: Path, tmp_path: Path) -> None:
    texts = [
        'a "great", gripping film',
        "awful, boring; the worst",
        'tab\there and a trailing quote"',
        "ünïcödé wonderful 🎬",
        "plain wonderful film",
    ]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    target = tmp_path / "predictions.csv"
    result = cli(["predict", "--model", trained_model, "--file", source, "--output", target])
    assert result.exit_code == 0, result.stderr
    with target.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["text"] for r in rows] == texts
    expected = cli(["predict", "--model", trained_model, "--json", *texts])
    for row, want in zip(rows, map(json.loads, expected.stdout.splitlines()), strict=True):
        assert row["label"] == want["label"] and float(row["probability"]) == want["probability"]
        assert row["no_known_words"] == json.dumps(want["no_known_words"])  # true / false, as in JSON


def test_config_show_fills_defaults_and_applies_set(cli, tiny_config: Path) -> None:
    result = cli(["config", "show", tiny_config, "--set", "training.epochs=3", "--set", "model.dropout=0.5"])
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["training"]["epochs"] == 3 and shown["model"]["dropout"] == 0.5
    assert shown["word2vec"]["vector_size"] == 16  # from the file
    assert shown["text"] == Config().text.model_dump(mode="json")  # not in the file: every default filled in
    flat = {f"{section}.{key}" for section, keys in shown.items() if isinstance(keys, dict) for key in keys}
    flat |= {key for key, value in shown.items() if not isinstance(value, dict)}
    assert flat == set(all_keys())


def test_config_validate_exit_codes(cli, tiny_config: Path, tmp_path: Path) -> None:
    result = cli(["config", "validate", tiny_config])
    assert result.exit_code == 0 and "valid" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  epochs: 0\n", encoding="utf-8")
    result = cli(["config", "validate", bad])
    assert (
        result.exit_code == 2 and result.stderr.startswith("error: ") and "training.epochs" in result.stderr
    )
    result = cli(["config", "validate", tiny_config, "--set", "training.epoch=3"])
    assert result.exit_code == 2 and "did you mean 'training.epochs'" in result.stderr


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("name", PLOT_FILES)
def test_plots_are_images(trained_model: Path, name: str) -> None:
    import matplotlib.image

    path = trained_model / name
    width, height = _png_size(path)
    assert width >= 300 and height >= 300
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0.01  # an image, not a blank canvas


COMMANDS = [[], ["train"], ["eval"], ["predict"], ["config"], ["config", "show"], ["config", "validate"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "sentiment")
def test_help_for_every_command_and_option(cli, command: list[str]) -> None:
    import typer

    from sentiment.cli import app

    result = cli([*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.stdout
    node = typer.main.get_command(app)  # typer's own click: duck-typed below
    for name in command:
        node = node.commands[name]
    assert node.help or node.short_help, f"{command}: no help text"
    for param in node.params:
        assert getattr(param, "help", None), f"{command}: {param.name} has no help text"
        if param.param_type_name == "option":
            assert param.opts[0] in result.stdout
    if command in ([], ["config"]):
        for sub in node.commands.values():
            assert sub.help, f"{sub.name}: no help text"


def test_shell_completion(cli) -> None:
    from typer.testing import CliRunner

    from sentiment.cli import app

    assert "--install-completion" in cli(["--help"]).stdout
    env = {"_SENTIMENT_COMPLETE": "complete_bash", "COMP_WORDS": "sentiment config ", "COMP_CWORD": "2"}
    result = CliRunner().invoke(app, [], prog_name="sentiment", env=env)
    assert result.exit_code == 0 and result.stdout.split() == ["list", "show", "validate"]


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_unless_told_otherwise(given: str | None, expected: str) -> None:
    """Spinning OpenMP threads made fine-tuning 2.2x slower beside one busy process (benchmark_threads.py)."""
    import os
    import subprocess
    import sys

    probe = (
        "import atexit, os, sys\n"
        "atexit.register(lambda: print(os.environ.get('OMP_WAIT_POLICY')))\n"
        "sys.argv = ['sentiment', '--version']\n"
        "from sentiment.cli import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == expected
