"""Bad configs through the real CLI: exit 2, one `error:` line naming the problem, saved model untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from _reliability import assert_bad_input, edit_config, install_previous_model, snapshot
from sentiment.paths import last_model_file


@pytest.fixture
def previous(tmp_path: Path, trained_model: Path, tiny_config: Path) -> Path:
    """The model the tiny config's last run saved (runs/tiny); a failed run must leave it byte for byte."""
    return install_previous_model(trained_model, tmp_path / "runs" / "tiny")


def train_unchanged(cli, previous: Path, args: list) -> object:
    before = snapshot(previous, last_model_file())
    result = cli(["train", *args, "--quiet"])
    assert snapshot(previous, last_model_file()) == before
    assert sorted(p.name for p in previous.parent.iterdir()) == ["tiny"]  # no half-written sibling either
    return result


def test_config_missing_file(cli, previous: Path, tmp_path: Path) -> None:
    result = train_unchanged(cli, previous, ["--config", tmp_path / "nope.yaml"])
    assert_bad_input(result, "config file not found", "nope.yaml")


def test_config_yaml_syntax_error_line_and_column(cli, previous: Path, tiny_config: Path) -> None:
    text = tiny_config.read_text().replace("  epochs: 10\n", "  epochs: [10\n")
    tiny_config.write_text(text)
    result = train_unchanged(cli, previous, ["--config", tiny_config])
    message = assert_bad_input(result, "YAML syntax error at line", "column", str(tiny_config))
    line = text.splitlines().index("  batch_size: 32") + 1  # the parser notices at the line after the '['
    assert f"line {line}," in message


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("trainig", {"epochs": 3}, "unknown key 'trainig' (did you mean 'training'?)"),
        ("training", {"epoch": 3}, "unknown key 'training.epoch' (did you mean 'training.epochs'?)"),
        ("model", {"hiden_dims": [4]}, "unknown key 'model.hiden_dims' (did you mean 'model.hidden_dims'?)"),
    ],
    ids=["section", "key", "nested-key"],
)
def test_config_unknown_key_suggests_closest(cli, previous, tiny_config, section, values, expected) -> None:
    edit_config(tiny_config, **{section: values})
    result = train_unchanged(cli, previous, ["--config", tiny_config])
    assert_bad_input(result, expected)


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("training", {"epochs": -1}, "'training.epochs' = -1: Input should be greater than or equal to 1"),
        ("training", {"epochs": "many"}, "'training.epochs' = 'many': Input should be a valid integer"),
        ("data", {"test_size": 0}, "'data.test_size' = 0: Input should be greater than 0"),
        ("data", {"test_size": 1.5}, "'data.test_size' = 1.5: Input should be less than 1"),
        ("model", {"dropout": 1.0}, "'model.dropout' = 1.0: Input should be less than 1"),
        ("model", {"hidden_dims": []}, "'model.hidden_dims' = []: List should have at least 1 item"),
        ("model", {"hidden_dims": [8, 0]}, "every hidden layer size must be >= 1"),
        ("device", "gpu", "'device' = 'gpu': must be auto, cpu, cuda or cuda:N"),
        ("training", {"lr": float("inf")}, "'training.lr' = inf: Input should be a finite number"),
        ("word2vec", {"sample": float("nan")}, "'word2vec.sample' = nan: Input should be a finite number"),
        ("word2vec", {"alpha": 5}, "'word2vec.alpha' = 5: Input should be less than or equal to 1"),
        ("seed", -1, "'seed' = -1: Input should be greater than or equal to 0"),
        ("seed", 2**32, "'seed' = 4294967296: Input should be less than or equal to 4294967295"),
        (
            "training",
            {"cpu_threads": 2**64},
            "'training.cpu_threads' = 18446744073709551616: Input should be less",
        ),
        (
            "training",
            {"batch_size": 10**22},
            "'training.batch_size' = 10000000000000000000000: Input should be",
        ),
        ("model", {"hidden_dims": [10**12]}, "every hidden layer size must be <= 65,536"),
        (
            "training",
            {
                "class_weight": {"positive": float("inf")}
            },  # the dict member of the union speaks, unnamed tags out
            "'training.class_weight.positive' = inf: Input should be a finite number",
        ),
        (
            "data",
            {"text_column": "sentiment", "label_column": "sentiment"},
            "'data.label_column' = 'sentiment': is also data.text_column",
        ),
    ],
    ids=[
        "negative-epochs",
        "epochs-type",
        "test-size-0",
        "test-size-1.5",
        "dropout-1",
        "empty-hidden-dims",
        "zero-width-layer",
        "device",
        "inf-float",
        "nan-float",
        "word2vec-alpha",
        "negative-seed",
        "seed-past-numpy",
        "threads-past-int64",
        "huge-batch",
        "huge-layer",
        "inf-class-weight",
        "text-is-label",
    ],
)
def test_config_wrong_type_or_range(cli, previous, tiny_config, section, values, expected) -> None:
    edit_config(tiny_config, **{section: values})
    result = train_unchanged(cli, previous, ["--config", tiny_config])
    assert_bad_input(result, str(tiny_config), expected)


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("training.epochs", "--set 'training.epochs': expected KEY=VALUE, e.g. --set training.epochs=10"),
        ("=3", "--set '=3': '' is not a dotted key such as training.epochs"),
        ("training.epochs=[1", "--set 'training.epochs=[1': value is not valid YAML"),
        ("training.epoch=3", "--set training.epoch: unknown key (did you mean 'training.epochs'?)"),
        ("training.epochs=-2", "'training.epochs' = -2: Input should be greater than or equal to 1"),
    ],
    ids=["no-equals", "no-key", "bad-yaml", "unknown-key", "out-of-range"],
)
def test_config_bad_set_override(cli, previous, tiny_config, pair, expected) -> None:
    result = train_unchanged(cli, previous, ["--config", tiny_config, "--set", pair])
    assert_bad_input(result, expected)


def test_config_error_traceback_only_with_debug(cli, tiny_config: Path) -> None:
    from sentiment.errors import ConfigError

    edit_config(tiny_config, training={"epochs": -1})
    result = cli(["train", "--config", tiny_config, "--debug"])
    assert isinstance(result.exception, ConfigError)  # re-raised: Python prints the traceback
    assert "training.epochs" in str(result.exception)


def test_config_validate_reports_the_same_errors(cli, tiny_config: Path) -> None:
    edit_config(tiny_config, training={"epoch": 3})
    result = cli(["config", "validate", tiny_config])
    assert_bad_input(result, "unknown key 'training.epoch' (did you mean 'training.epochs'?)")


def test_debug_shows_the_traceback_in_a_real_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "sentiment", "train", "--config", str(tmp_path / "nope.yaml")]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines() == [f"error: config file not found: {tmp_path / 'nope.yaml'}"]
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr and "ConfigError" in debug.stderr


@pytest.mark.parametrize("where", ["data:\n  text_column: *i\n", "model:\n  hidden_dims: *i\n", "seed: *i\n"])
def test_yaml_alias_expansion_fails_fast(cli, tmp_path: Path, where: str) -> None:
    """A "billion laughs": nine levels of nine aliases is 387 million strings once expanded. Refused by the
    size check (its message below) before anything expands it; it used to hang formatting the value."""
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]")
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(levels) + "\n" + where)
    result = cli(["config", "validate", config])
    assert result.exit_code == 2 and "more than 10,000 values or 20 levels of nesting" in result.stderr
    assert len(result.stderr) < 300


def test_config_nested_past_the_stack(cli, tmp_path: Path) -> None:
    config = tmp_path / "deep.yaml"
    config.write_text("data: " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = cli(["config", "validate", config])
    assert result.exit_code == 2 and "deep.yaml: nested too deeply to be a config" in result.stderr


def test_numbers_past_pythons_digit_limit_are_config_errors(cli, tmp_path: Path, tiny_config: Path) -> None:
    """PyYAML builds ints with int(), which refuses more than 4,300 digits with a ValueError."""
    big = "9" * 5000
    result = cli(["config", "validate", tiny_config, "--set", f"seed={big}"])
    assert_bad_input(result, "--set seed: a number with more than 4,300 digits")
    tiny_config.write_text(tiny_config.read_text().replace("seed: 7", f"seed: {big}"))
    result = cli(["config", "validate", tiny_config])
    assert_bad_input(result, str(tiny_config), "a number with more than 4,300 digits")


def test_config_validate_checks_what_train_checks_before_reading_data(
    cli, tmp_path: Path, tiny_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the model and the caches go, and the device: `train` refuses these before any work, so
    `config validate` must too."""
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    result = cli(["config", "validate", tiny_config, "--set", f"output_dir={blocker / 'runs'}"])
    assert_bad_input(result, "cannot be created", "afile is a file, not a directory")
    result = cli(["config", "validate", tiny_config, "--set", "device=cuda:7"])
    assert result.exit_code == 2 and "cuda:7" in result.stderr
    monkeypatch.setenv("SENTIMENT_HOME", str(blocker))
    result = cli(["config", "validate", tiny_config])
    assert_bad_input(result, f"SENTIMENT_HOME {blocker} is a file")


def test_an_endless_or_huge_config_file_is_refused_fast(cli, tmp_path: Path) -> None:
    """/dev/zero (or a pipe that never ends) used to be read whole: MemoryError after gigabytes."""
    result = cli(["config", "validate", "/dev/zero"])
    assert_bad_input(result, "/dev/zero: more than 1 MB; a config is a few dozen keys")


def test_a_set_value_nested_past_the_stack(cli, tiny_config: Path) -> None:
    result = cli(["config", "validate", tiny_config, "--set", "data.path=" + "[" * 5000 + "]" * 5000])
    assert_bad_input(result, "--set data.path: nested too deeply to be a setting")


def test_a_last_model_record_that_is_a_directory_stops_train_before_the_work(
    cli, tiny_config: Path, tmp_path: Path, monkeypatch
) -> None:
    home = tmp_path / "home"
    (home / "last_model").mkdir(parents=True)
    monkeypatch.setenv("SENTIMENT_HOME", str(home))
    result = cli(["train", "--config", tiny_config, "-q"])
    assert_bad_input(result, f"{home / 'last_model'} is not a file")


HOSTILE_YAML = {
    # a section written twice: YAML kept the second one alone, the first one's settings silently gone
    "section-twice": ("training:\n  epochs: 3\ntraining:\n  lr: 0.02\n", "key 'training' given twice"),
    "key-twice": ("training:\n  lr: 0.01\n  lr: 0.5\n", "key 'lr' given twice (first at line 2)"),
    "set": ("model:\n  hidden_dims: !!set {64: null, 8: null}\n", "tag !!set is not allowed"),
    "binary": ("data:\n  text_column: !!binary cmV2aWV3\n", "tag !!binary is not allowed"),
    "timestamp": ("seed: !!timestamp 2024-01-01\n", "tag !!timestamp is not allowed"),
}


@pytest.mark.parametrize("text, expected", HOSTILE_YAML.values(), ids=HOSTILE_YAML.keys())
def test_duplicate_keys_and_non_config_tags_are_refused(
    cli, tmp_path: Path, text: str, expected: str
) -> None:
    """(were taken: the last of two keys won silently, a set became a list in no stated order)"""
    config = tmp_path / "c.yaml"
    config.write_text(text, encoding="utf-8")
    assert_bad_input(cli(["config", "show", config]), f"{config}: YAML error at line", expected)
    key, value = (
        ("training", "{lr: 0.1, lr: 0.2}") if "twice" in expected else ("model.hidden_dims", "!!set {8}")
    )
    message = assert_bad_input(cli(["config", "show", "default", "--set", f"{key}={value}"]))
    assert message.startswith(f"error: --set {key}: "), message


def test_merge_keys_dates_labels_and_yaml_1_2_floats_are_read_as_meant(cli, tmp_path: Path) -> None:
    """A merge key may be overridden; a date is a label (was refused as a datetime); 1e5 is a number (YAML
    1.1 reads it as a string: refused as an integer); {1: 2.0} weighs the label '1' (was refused)."""
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(
        "data:\n  positive_label: 2024-01-01\n  max_rows: 1e5\n"
        "training:\n  <<: {epochs: 3, lr: 0.5}\n  lr: 0.01\n  class_weight: {0: 1.0, 1: 2.0}\n",
        encoding="utf-8",
    )
    result = cli(["config", "show", config])
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["data"]["positive_label"] == "2024-01-01"
    assert shown["data"]["max_rows"] == 100_000
    assert shown["training"]["epochs"] == 3 and shown["training"]["lr"] == 0.01
    assert shown["training"]["class_weight"] == {"0": 1.0, "1": 2.0}


def test_a_config_not_utf8_names_the_line(cli, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_bytes(b"seed: 1\n# caf\xe9\n")
    assert_bad_input(
        cli(["config", "show", config]),
        "not UTF-8 text (line 2, byte 13: b'\\xe9'); re-save the file as UTF-8",
    )


def test_output_dir_with_a_tilde_is_under_home(cli, tiny_config: Path, tmp_path: Path, monkeypatch) -> None:
    """(was a folder named ~ in the current directory)"""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    edit_config(tiny_config, output_dir="~/runs", training={"epochs": 1})
    result = cli(["train", "--config", tiny_config, "--quiet"])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "home" / "runs" / "tiny" / "meta.json").is_file()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    "pair, expected",
    [
        ('output_dir="a\\0b"', "'output_dir' = 'a\\x00b': a path cannot hold a NUL byte"),
        ('data.path="a\\0b.csv"', "'data.path' = 'a\\x00b.csv': a path cannot hold a NUL byte"),
        ("data.path=" + "a" * 5000, "data.path: 'aaaaaaaaaaaa"),
        ("output_dir=" + "a/" * 3000, "cannot be used: File name too long"),
    ],
    ids=["nul-output", "nul-data", "long-data", "long-output"],
)
def test_paths_with_a_nul_byte_or_too_long(cli, tiny_config: Path, pair: str, expected: str) -> None:
    """(were `unexpected ValueError: embedded null byte` / `unexpected OSError: File name too long`)"""
    message = assert_bad_input(cli(["config", "validate", tiny_config, "--set", pair]), expected)
    assert len(message) < 300


def test_a_search_space_with_huge_or_non_json_values(cli, tiny_config: Path, tmp_path: Path) -> None:
    """(a huge value was echoed whole into the message; a date or set choice was `unexpected TypeError`)"""
    space = tmp_path / "space.yaml"
    for text, expected in [
        ("training.lr: " + "a" * 100_000 + "\n", "training.lr: expected a range or choices"),
        (
            "training.lr: {low: [" + "1, " * 5000 + "1], high: 1}\n",
            "low must be a number, got [1, 1, 1, 1, ...]",
        ),
        ("training.lr: {choices: [2024-01-01]}\n", 'choice "2024-01-01" is not a valid value'),
        ("model.hidden_dims: {choices: [!!set {8: null}]}\n", "tag !!set is not allowed"),
        ("training.lr: {low: 0.1, high: 0.2}\ntraining.lr: {low: 0.1, high: 0.3}\n", "given twice"),
    ]:
        space.write_text(text, encoding="utf-8")
        result = cli(
            ["tune", "--config", tiny_config, "--space", space, "--trials", "1", "-o", tmp_path / "t"]
        )
        assert len(assert_bad_input(result, expected)) < 300
