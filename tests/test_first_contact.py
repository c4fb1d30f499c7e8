"""What a new user meets first: training on their own file with no config, configs by name, output that
lines up with the input, negation."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
import yaml

from conftest import write_reviews

QUICK = ["--set", "word2vec.workers=1", "--set", "word2vec.epochs=5", "--set", "training.epochs=8"]


def negation_reviews(path: Path, n: int = 600) -> Path:
    """Positive texts say "good" or "not bad", negative ones "bad" or "not good": each of good, bad and not
    is as frequent in both classes, so only the word pairs tell them apart."""
    rng = random.Random(0)
    filler = ["the", "a", "film", "movie", "plot", "actor", "scene", "story", "was", "it", "director"]
    filler += ["music", "camera", "script", "ending", "cast"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(n):
            positive = i % 2 == 0
            words = rng.choices(filler, k=rng.randint(4, 9))
            words.insert(
                rng.randint(0, len(words)),
                rng.choice(["good", "not bad"] if positive else ["bad", "not good"]),
            )
            writer.writerow([" ".join(words), int(positive)])
    return path


def test_train_on_your_own_file_without_a_config(cli, tmp_path: Path) -> None:
    data = write_reviews(
        tmp_path / "mine.csv", text_column="comment", label_column="ok", labels=("no", "yes")
    )
    result = cli(["train", "--data", data, "--output", tmp_path / "model", "--json", *QUICK])
    assert result.exit_code == 0, result.stderr
    assert "data: text column 'comment', label column 'ok', positive label 'yes', guessed from mine.csv" in (
        result.stderr
    )
    out = json.loads(result.stdout)  # --json: one object on stdout, nothing else
    assert out["model"] == str((tmp_path / "model").resolve()) and out["test"]["accuracy"] > 0.9
    saved = yaml.safe_load((tmp_path / "model" / "config.yaml").read_text())
    assert saved["data"]["path"] == str(data) and saved["data"]["kaggle_handle"] is None
    assert (saved["data"]["text_column"], saved["data"]["positive_label"], saved["data"]["shuffle"]) == (
        "comment",
        "yes",
        True,
    )
    result = cli(
        ["predict", "--model", tmp_path / "model", "a wonderful gripping film", "awful boring waste"]
    )
    assert result.stdout.split("\t")[0] == "yes" and "\nno\t" in result.stdout


def test_a_model_trained_on_raw_text_reads_negation(cli, tmp_path: Path) -> None:
    data = negation_reviews(tmp_path / "negation.csv")
    result = cli(
        ["train", "--data", data, "--output", tmp_path / "model", "--quiet", "--set", "word2vec.workers=1"]
    )
    assert result.exit_code == 0, result.stderr
    assert "negation words" not in result.stderr
    texts = ["the film was not good", "the film was not bad", "the film was good", "the film was bad"]
    result = cli(["predict", "--model", tmp_path / "model", "--json", *texts])
    labels = [json.loads(line)["label"] for line in result.stdout.splitlines()]
    assert labels == ["0", "1", "1", "0"]


def test_text_without_negation_words_is_pointed_out(cli, tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "stripped.csv", n=3000)  # 30,000 tokens, and no not / no / n't
    result = cli(["train", "--data", data, "--output", tmp_path / "model", *QUICK])
    assert result.exit_code == 0, result.stderr
    assert "warning: the training text has almost no negation words" in result.stderr


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([("one text here", "a"), ("another text", "b")], "pass --positive-label b (or a)"),
        ([(f"text {i}", f"label{i}") for i in range(1001)], "1,001 distinct labels (at most 1,000)"),
    ],
    ids=["unclear-positive", "too-many-labels"],
)
def test_label_errors_name_the_flag(cli, tmp_path: Path, rows: list[tuple[str, str]], expected: str) -> None:
    data = tmp_path / "d.csv"
    data.write_text("review,sentiment\n" + "".join(f"{t},{label}\n" for t, label in rows * 20))
    result = cli(["train", "--data", data])
    assert result.exit_code == 2 and expected in result.stderr and "Traceback" not in result.stderr


def test_unclear_columns_name_the_flag(cli, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b,c\n" + "x y z,1,0\n" * 20)
    result = cli(["train", "--data", data])
    assert result.exit_code == 2 and "among a, b, c; pass --text-column NAME" in result.stderr
    result = cli(["train", "--text-column", "a"])
    assert result.exit_code == 2 and "--text-column goes with --data FILE" in result.stderr


def test_shipped_configs_by_name(cli, tmp_path: Path) -> None:
    result = cli(["config", "list"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "default",
        "imdb",
        "imdb_fast",
        "imdb_plain",
        "imdb_ratings",
        "tutorial",
    ]
    shown = cli(["config", "show", "default"])
    mine = tmp_path / "my.yaml"
    mine.write_text(shown.stdout)
    assert cli(["config", "show", str(mine)]).stdout == shown.stdout  # a config of one's own, same settings
    missing = cli(["config", "validate", "default", "--set", f"data.path={tmp_path / 'nowhere.csv'}"])
    assert missing.exit_code == 2 and "data.path: file not found" in missing.stderr
    unknown = cli(["train", "--config", "defualt"])
    assert (
        unknown.exit_code == 2
        and "shipped config: default, imdb, imdb_fast, imdb_plain, imdb_ratings, tutorial" in unknown.stderr
    )


def test_predict_output_lines_up_with_the_input(cli, trained_model: Path, tmp_path: Path) -> None:
    texts = ["a wonderful film", 'tabs\tand "quotes"', "zzzz qqqq"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    result = cli(["predict", "--model", trained_model, "--file", tmp_path / "in.txt"])
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(len(line.split("\t")) == 3 for line in lines)
    assert lines[1].split("\t")[2] == 'tabs and "quotes"' and lines[2].split("\t")[0].endswith("*")
    table = tmp_path / "in.csv"
    table.write_text("id,review,label\n7,a wonderful film,x\n8,dull and boring,y\n")
    rows = [
        json.loads(line)
        for line in cli(["predict", "--model", trained_model, "--file", table, "--json"]).stdout.splitlines()
    ]
    assert [(r["id"], r["input_label"]) for r in rows] == [
        ("7", "x"),
        ("8", "y"),
    ]  # the input columns stay, as read
    cli(["predict", "--model", trained_model, "--file", table, "--output", tmp_path / "out.csv"])
    with (tmp_path / "out.csv").open() as fh:
        out = list(csv.DictReader(fh))
    assert [r["input_label"] for r in out] == ["x", "y"]
    assert all(len(r["probability"].split(".")[1]) == 6 and "e" not in r["probability"] for r in out)
    assert {r["no_known_words"] for r in out} <= {"true", "false"}


def test_names_and_numbers_say_one_true_thing_once(cli, tmp_path: Path) -> None:
    """The run's own words: each stage timed once, the file's labels in the summary's confusion table,
    history.csv's learning rates named for what they drive."""
    data = write_reviews(tmp_path / "mine.csv", labels=("no", "yes"))
    result = cli(["train", "--data", data, "--output", tmp_path / "model", "-v", *QUICK])
    assert result.exit_code == 0, result.stderr
    stages = [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("stage ")]
    assert stages and len(stages) == len(set(stages)), stages
    assert "┃ no " in result.stdout and "┃ yes " in result.stdout and "negative" not in result.stdout
    with (tmp_path / "model" / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    config = yaml.safe_load((tmp_path / "model" / "config.yaml").read_text())["training"]
    assert {float(r["lr"]) for r in rows} == {config["lr"]}  # the MLP's
    assert {float(r["embedding_lr"]) for r in rows} == {config["embedding_lr"]}  # the fine-tuned vectors'
    assert {r["phase"] for r in rows} == {"fit", "refit"}


def _imbalanced(path: Path, n: int = 600, every: int = 8) -> Path:
    from conftest import make_review

    rng = random.Random(2)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment"])
        for i in range(n):
            positive = i % every == 0
            writer.writerow([make_review(rng, positive), "positive" if positive else "negative"])
    return path


def test_balanced_class_weights_lift_the_rare_class(cli, tmp_path: Path) -> None:
    data = _imbalanced(tmp_path / "rare.csv")
    probability = {}
    for weight in ("none", "balanced"):
        out = tmp_path / weight
        options = ["--set", f"training.class_weight={weight}", "--set", "model.fine_tune_embeddings=false"]
        result = cli(
            ["train", "--data", data, "-o", out, *QUICK, *options, "--set", "features.normalize=true"]
        )
        assert result.exit_code == 0, result.stderr
        shown = re.search(r"class weights: negative (\S+), positive (\S+) \(balanced\)", result.stderr)
        assert (shown is not None) is (weight == "balanced")
        if shown:  # 1 in 8 rows positive: 8 / 14 and 8 / 2, about
            assert 0.55 < float(shown[1].rstrip(",")) < 0.6 and 3.5 < float(shown[2]) < 4.5
        rows = cli(["predict", "--model", out, "--file", data, "--json"]).stdout.splitlines()
        probability[weight] = sum(json.loads(r)["probability"] for r in rows) / len(rows)
    assert probability["balanced"] > probability["none"] + 0.02  # measured: 0.164 -> 0.207


def test_class_weight_for_a_label_the_data_lacks(cli, tmp_path: Path) -> None:
    data = _imbalanced(tmp_path / "rare.csv")
    result = cli(["train", "--data", data, "--set", "training.class_weight={positive: 3, postive: 2}"])
    assert result.exit_code == 2 and "training.class_weight names 'postive', not a label" in result.stderr


def test_label_map_turns_star_ratings_into_two_labels(cli, tmp_path: Path) -> None:
    from conftest import make_review

    rng = random.Random(4)
    data = tmp_path / "stars.csv"
    with data.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "rating"])
        for i in range(400):
            writer.writerow(
                [make_review(rng, i % 2 == 0), rng.choice([8, 9, 10] if i % 2 == 0 else [1, 2, 3])]
            )
    mapping = "{1: bad, 2: bad, 3: bad, 8: good, 9: good, 10: good}"
    options = ["--label-column", "rating", "--positive-label", "good", "--set", f"data.label_map={mapping}"]
    result = cli(["train", "--data", data, "-o", tmp_path / "model", "--json", *QUICK, *options])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["test"]["accuracy"] > 0.9
    assert json.loads((tmp_path / "model" / "meta.json").read_text())["labels"] == ["bad", "good"]
    evaluated = cli(["eval", "--data", data, "--json"])  # the map applies to eval's file too
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["n"] == 400


def test_eval_names_labels_the_model_does_not_know(cli, trained_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "other.csv"
    data.write_text("review,sentiment\ngreat film,positive\nawful film,negative\nmeh,neutral\nok,mixed\n")
    result = cli(["eval", "--model", trained_model, "--data", data])
    assert result.exit_code == 2
    assert (
        "holds label(s) the model does not know: mixed, neutral (it knows negative and positive)"
        in result.stderr
    )
