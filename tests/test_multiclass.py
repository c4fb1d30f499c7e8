"""More than two labels: softmax and cross-entropy, stratified splits, metrics per class, every label's
probability from the NumPy predictor."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import NEUTRAL

WORDS = {
    "positive": ["great", "wonderful", "loved", "brilliant"],
    "negative": ["awful", "boring", "hated", "dull"],
    "mixed": ["okay", "average", "fine", "passable"],
}
QUICK = ["--set", "word2vec.workers=1", "--set", "word2vec.epochs=5", "--set", "training.epochs=10"]


def three_labels(path: Path, n: int = 600, label_column: str = "label") -> Path:
    rng = random.Random(0)
    names = list(WORDS)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", label_column])
        for i in range(n):
            label = names[i % 3]
            words = rng.choices(NEUTRAL, k=rng.randint(4, 8)) + rng.choices(WORDS[label], k=rng.randint(2, 3))
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])
    return path


def test_three_labels_train_evaluate_and_predict(cli, tmp_path: Path) -> None:
    data = three_labels(tmp_path / "three.csv")
    result = cli(["train", "--data", data, "-o", tmp_path / "model", "--json", *QUICK])
    assert result.exit_code == 0, result.stderr
    assert "task: multiclass, decided from the data's 3 labels (data.task: auto)" in result.stderr
    out = json.loads(result.stdout)["test"]
    assert out["accuracy"] > 0.9 and out["f1"] > 0.9 and {"f1_micro", "f1_weighted"} <= set(out)
    assert list(out["per_class"]) == ["mixed", "negative", "positive"]  # sorted
    matrix = np.array(out["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == out["n"] == 120
    assert matrix.sum(axis=1).tolist() == [40, 40, 40]  # stratified over the three labels
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["labels"] == ["mixed", "negative", "positive"]

    texts = ["a wonderful brilliant film", "boring and dull", "it was okay, average"]
    rows = [
        json.loads(r)
        for r in cli(["predict", "--model", tmp_path / "model", "--json", *texts]).stdout.splitlines()
    ]
    assert [r["label"] for r in rows] == ["positive", "negative", "mixed"]
    for row in rows:
        assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert row["probability"] == max(row["probabilities"].values())

    top = json.loads(
        cli(["predict", "--model", tmp_path / "model", "--json", "--top-k", "2", texts[0]]).stdout
    )
    assert top["top"][0]["label"] == "positive" and len(top["top"]) == 2
    assert top["top"][0]["probability"] >= top["top"][1]["probability"]
    line = cli(["predict", "--model", tmp_path / "model", "--top-k", "3", texts[1]]).stdout.rstrip("\n")
    label, _, ranked, text = line.split("\t")
    assert (
        label == "negative" and ranked.startswith("negative ") and ranked.count(",") == 2 and text == texts[1]
    )

    evaluated = json.loads(cli(["eval", "--model", tmp_path / "model", "--json"]).stdout)
    assert evaluated["accuracy"] == pytest.approx(out["accuracy"]) and evaluated["labels"] == meta["labels"]
    other = tmp_path / "other.csv"
    other.write_text("text,label\ngreat film,positive\nhmm,sarcastic\n")
    unknown = cli(["eval", "--model", tmp_path / "model", "--data", other])
    assert (
        unknown.exit_code == 2
        and "does not know: sarcastic (it knows mixed, negative and positive)" in unknown.stderr
    )


def test_star_ratings_to_four_buckets_with_a_label_map(cli, tmp_path: Path) -> None:
    rng = random.Random(1)
    data = tmp_path / "stars.csv"
    word_of = {
        1: "awful",
        2: "awful",
        3: "boring",
        4: "boring",
        7: "great",
        8: "great",
        9: "brilliant",
        10: "brilliant",
    }
    with data.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "rating"])
        for i in range(800):
            rating = [1, 2, 3, 4, 7, 8, 9, 10][i % 8]
            writer.writerow(
                [" ".join([*rng.choices(NEUTRAL, k=5), word_of[rating], word_of[rating]]), rating]
            )
    mapping = (
        "{1: very negative, 2: very negative, 3: negative, 4: negative, 7: positive, 8: positive, "
        "9: very positive, 10: very positive}"
    )
    order = "[very negative, negative, positive, very positive]"
    options = [
        "--label-column",
        "rating",
        "--set",
        f"data.label_map={mapping}",
        "--set",
        f"data.labels={order}",
    ]
    result = cli(["train", "--data", data, "-o", tmp_path / "model", "--json", *QUICK, *options])
    assert result.exit_code == 0, result.stderr
    assert list(json.loads(result.stdout)["test"]["per_class"]) == [
        "very negative",
        "negative",
        "positive",
        "very positive",
    ]
    assert json.loads(result.stdout)["test"]["accuracy"] > 0.9


def test_numpy_forward_is_torch_softmax() -> None:
    from sentiment.model import SimpleMLP

    torch.manual_seed(0)
    mlp = SimpleMLP(6, [8], "gelu", outputs=4).eval()
    x = torch.randn(50, 6) * 2
    with torch.no_grad():
        expected = torch.softmax(mlp(x), dim=-1).double().numpy()
    got = mlp.export().forward(x.numpy())
    assert got.shape == (50, 4) and np.abs(got - expected).max() < 1e-6


def test_weighted_cross_entropy_and_nb_weights_one_vs_rest() -> None:
    from sentiment.features import nb_weights
    from sentiment.text import TokenBags
    from sentiment.trainer import make_criterion

    logits, y = torch.randn(5, 3), torch.tensor([0.0, 2.0, 1.0, 2.0, 0.0])
    expected = torch.nn.functional.cross_entropy(logits, y.long(), weight=torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(make_criterion([1.0, 2.0, 0.5], multiclass=True)(logits, y), expected)
    # token 0 only in class 0, token 1 in every text, token 2 only in class 2
    bags = TokenBags(np.array([0, 1, 1, 1, 2]), np.array([0, 2, 3, 5]))
    weights = nb_weights(bags, np.array([0, 1, 2]), 3, alpha=1.0, floor=0.1)
    assert weights[0] == pytest.approx(weights[2]) and weights[0] > weights[1] >= 0.1


TOPICS = {"acting": ["actor", "performance", "cast"], "music": ["score", "soundtrack", "song"]}
TOPICS["plot"] = ["story", "twist", "ending"]


def label_sets(path: Path, n: int = 600, jsonl: bool = False) -> Path:
    rng = random.Random(0)
    rows = []
    for _ in range(n):
        labels = sorted(rng.sample(list(TOPICS), rng.randint(1, 2)))
        words = rng.choices(NEUTRAL, k=5) + [w for label in labels for w in rng.choices(TOPICS[label], k=2)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "topics": labels if jsonl else "|".join(labels)})
    if jsonl:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["text", "topics"])
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.mark.parametrize("jsonl", [False, True], ids=["separator", "json-lists"])
def test_label_sets_train_with_a_threshold_per_label(cli, tmp_path: Path, jsonl: bool) -> None:
    data = label_sets(tmp_path / ("sets.jsonl" if jsonl else "sets.csv"), jsonl=jsonl)
    options = [] if jsonl else ["--set", 'data.label_separator="|"']
    options += ["--set", "eval.tune_threshold=true", "--set", "eval.threshold_metric=f1"]
    result = cli(["train", "--data", data, "-o", tmp_path / "model", "--json", *QUICK[:4], *options])
    assert result.exit_code == 0, result.stderr
    assert "task: multilabel" in result.stderr
    test = json.loads(result.stdout)["test"]
    assert (
        list(test["per_class"]) == ["acting", "music", "plot"] and test["accuracy"] > 0.8
    )  # subset accuracy
    assert 0 <= test["hamming_loss"] < 0.1 and test["f1_micro"] > 0.9
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["task"] == "multilabel" and len(meta["thresholds"]) == 3
    row = json.loads(
        cli(["predict", "--model", tmp_path / "model", "--json", "great soundtrack, a twist"]).stdout
    )
    assert row["labels"] == ["music", "plot"] and set(row["probabilities"]) == {"acting", "music", "plot"}
    evaluated = json.loads(cli(["eval", "--model", tmp_path / "model", "--json"]).stdout)
    assert evaluated["accuracy"] == pytest.approx(test["accuracy"])


def test_label_set_errors(cli, tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,topics\n" + "a film,acting|plot\n" * 20 + "another,|\n")
    result = cli(["train", "--data", data, "--set", 'data.label_separator="|"'])
    assert result.exit_code == 2 and "row 21 has an empty label set in column 'topics'" in result.stderr
    # label sets take class weights as the weight of each label's positive cells (balanced: without / with)
    sets = ["--set", 'data.label_separator="|"', "--set", "training.class_weight=balanced"]
    result = cli(["train", "--data", label_sets(tmp_path / "s.csv"), "-o", tmp_path / "weighted", *sets])
    assert result.exit_code == 0, result.stderr
    assert "weights of each label's positive cells: acting" in result.stderr


def test_label_set_class_weights_are_positive_cell_weights() -> None:
    from types import SimpleNamespace

    from sentiment.config import load_config
    from sentiment.pipeline import class_weights
    from sentiment.progress import Reporter

    y = np.array([[1, 0], [1, 1], [1, 0], [0, 0]])  # "a" in 3 of 4 texts, "b" in 1
    prepared = SimpleNamespace(labels={"train": y}, label_names=["a", "b"])
    balanced = class_weights(load_config("default", ["training.class_weight=balanced"]), prepared, Reporter())
    assert balanced == pytest.approx([1 / 3, 3.0])
    given = class_weights(load_config("default", ["training.class_weight={b: 2}"]), prepared, Reporter())
    assert given == [1.0, 2.0]


def test_numpy_forward_is_torch_for_label_sets() -> None:
    from sentiment.model import SimpleMLP

    torch.manual_seed(1)
    mlp = SimpleMLP(6, [8], "relu", outputs=3, multilabel=True).eval()
    x = torch.randn(40, 6) * 2
    with torch.no_grad():
        expected = mlp(x).double().numpy()  # a sigmoid per label, inside the model
    weights = mlp.export()
    assert weights.head == "sigmoid" and np.abs(weights.forward(x.numpy()) - expected).max() < 1e-6
    assert not np.allclose(expected.sum(axis=1), 1)  # independent labels, not one distribution


def test_a_label_with_no_training_example_is_named(tmp_path: Path) -> None:
    from sentiment.config import DataConfig
    from sentiment.data import load_splits
    from sentiment.errors import DataError

    data = three_labels(tmp_path / "three.csv")
    order = ["mixed", "negative", "positive", "sarcastic"]  # data.labels names one the data never shows
    with pytest.raises(DataError, match="only 0 'sarcastic' row"):
        load_splits(
            DataConfig(path=str(data), text_column="text", label_column="label", labels=order), seed=0
        )
    sets = label_sets(tmp_path / "sets.csv")
    config = DataConfig(
        path=str(sets),
        text_column="text",
        label_column="topics",
        label_separator="|",
        labels=[*TOPICS, "gore"],
    )
    with pytest.raises(DataError, match=r"the training split has no example of label\(s\) gore"):
        load_splits(config, seed=0)
    only = tmp_path / "one.csv"
    only.write_text("text,label\n" + "a film\tx\n".replace("\t", ",") * 30)
    with pytest.raises(DataError, match="exactly two classes, found 1: x"):
        load_splits(
            DataConfig(path=str(only), text_column="text", label_column="label", positive_label="x"), seed=0
        )


@pytest.mark.parametrize(
    ("names", "columns", "shows"),
    [
        (["neg", "neu", "pos"], 80, "names"),
        ([f"a_rather_long_label_{i:02d}" for i in range(12)], 200, "numbers"),
        ([f"a_rather_long_label_{i:02d}" for i in range(30)], 80, "note"),
    ],
)
def test_the_confusion_table_fits_the_terminal(
    capsys, monkeypatch, names: list[str], columns: int, shows: str
) -> None:
    """Squeezed into the terminal, rich printed a 30-label matrix with every cell empty. The table is headed
    by the names, by numbers when the names are too wide, or replaced by a line saying where the matrix is."""
    from sentiment.report import print_metrics

    monkeypatch.setenv("COLUMNS", str(columns))
    n = len(names)
    matrix = [[7 if i == j else i + j for j in range(n)] for i in range(n)]
    figures = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 7}
    metrics = {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "n": 7 * n}
    metrics |= {"confusion_matrix": matrix, "per_class": dict.fromkeys(names, figures)}
    print_metrics(metrics, title="Test metrics")
    out = capsys.readouterr().out
    table_lines = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert max(map(len, table_lines)) <= columns and "…" not in out
    cells = f"│ {names[-1]} │" if shows == "names" else f"│ {n} {names[-1]} │"
    if shows == "note":
        assert f"Confusion matrix: {n} x {n}, wider than this terminal ({columns} columns)" in out
        assert "Confusion matrix (rows" not in out
    else:
        assert ("by number" in out) == (shows == "numbers")
        row = next(line for line in out.splitlines() if line.startswith(cells))
        assert row.split("│")[-2].strip() == "7"  # the last class's diagonal cell, printed


def test_a_legend_of_30_long_class_names_fits_the_plot(tmp_path: Path) -> None:
    """The per-class precision-recall legend takes as many columns as its longest name leaves room for: four
    columns of 30 long names were cut off at both sides of precision_recall.png."""
    from matplotlib.figure import Figure

    from sentiment.plots import _precision_recall_per_class

    rng = np.random.default_rng(0)
    y = rng.integers(0, 30, 600)
    probs = rng.random((600, 30))
    probs[np.arange(600), y] += 1
    figures: list[Figure] = []
    _precision_recall_per_class(
        lambda **kw: figures.append(Figure(**kw)) or figures[-1],
        tmp_path / "pr.png",
        y,
        probs / probs.sum(axis=1, keepdims=True),
        [f"emotion_{i:02d}_long_name" for i in range(30)],
    )
    fig = figures[0]
    box = fig.legends[0].get_window_extent()  # as laid out when saved
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    assert len(fig.legends[0].get_texts()) == 30 and (tmp_path / "pr.png").stat().st_size > 0


def test_long_label_names_wrap_in_the_per_label_table(capsys, monkeypatch) -> None:
    """At 80 columns the 9 columns of a label-set table cut every long name to 'emotion_…': now they wrap."""
    from sentiment.report import print_metrics

    monkeypatch.setenv("COLUMNS", "80")
    names = [f"emotion_{i:02d}_long_name" for i in range(3)]
    figures = {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 7, "threshold": 0.4}
    figures |= {"tp": 3, "fp": 1, "fn": 2}
    metrics = {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "hamming_loss": 0.1, "n": 21}
    print_metrics(metrics | {"confusion_matrix": None, "per_class": dict.fromkeys(names, figures)}, title="T")
    out = capsys.readouterr().out
    table = out[out.index("Per label") :]
    first_cells = "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))
    assert "…" not in out and first_cells == "".join(names)
