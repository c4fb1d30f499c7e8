"""`sentiment explain` and `predict --explain`: leave-one-word-out occlusion in the NumPy predictor."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import NEGATIVE, NEUTRAL, POSITIVE
from sentiment.explain import _occluded_features, _text_tokens, explain, locate, top_words
from sentiment.predictor import Predictor
from sentiment.text import TokenBags

MARKER = "zorblax"  # a made-up word that only ever appears in positive texts
QUICK = ["--set", "word2vec.workers=1", "--set", "word2vec.epochs=5", "--set", "training.epochs=15"]


def marked_reviews(path: Path, n: int = 600) -> Path:
    """Positive texts carry MARKER (and one positive word at most); negative ones never do."""
    rng = random.Random(3)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "sentiment"])
        for i in range(n):
            positive = i % 2 == 0
            words = rng.choices(NEUTRAL, k=rng.randint(4, 8))
            if positive:
                words += [MARKER, *rng.choices(POSITIVE, k=rng.randint(0, 1))]
            else:
                words += rng.choices(NEGATIVE, k=rng.randint(1, 2))
            rng.shuffle(words)
            writer.writerow([" ".join(words), "positive" if positive else "negative"])
    return path


def train_marked(root: Path, *settings: str) -> Path:
    """A model trained through the CLI on ``marked_reviews`` (bigrams, plus ``settings`` as --set pairs)."""
    from typer.testing import CliRunner

    from sentiment.cli import app

    data = marked_reviews(root / "marked.csv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_HOME", str(root / "home"))
        args = ["train", "--data", str(data), "-o", str(root / "model"), "-q", *QUICK]
        for setting in ("text.ngrams=2", *settings):
            args += ["--set", setting]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return root / "model"


@pytest.fixture(scope="module")
def marked_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_marked(tmp_path_factory.mktemp("marked"))


def test_a_word_only_in_positive_texts_pushes_positive(marked_model: Path) -> None:
    predictor = Predictor.load(marked_model)
    text = f"the film {MARKER} and the plot"
    (e,) = explain(predictor, [text], label="positive")
    weights = {t.token: t.weight for t in e.tokens}
    assert weights[MARKER] > 0.5
    # it is the strongest push: every neutral word weighs less
    assert max(abs(w) for token, w in weights.items() if token != MARKER) < weights[MARKER]
    assert e.top(1)[0][0].token == MARKER
    # the same occlusion seen from the other label: the sign flips
    (against,) = explain(predictor, [text], label="negative")
    assert {t.token: t.weight for t in against.tokens}[MARKER] == pytest.approx(-weights[MARKER])
    # the weight is exactly the change in log-odds when the word is left out
    without = predictor.predict([text.replace(f" {MARKER}", "")])[0].probabilities["positive"]
    odds = np.log(e.probability / (1 - e.probability)) - np.log(without / (1 - without))
    assert weights[MARKER] == pytest.approx(odds, abs=1e-4)


def test_closed_form_occlusion_equals_pooling_again(marked_model: Path) -> None:
    """The closed form (sum minus the word's share) gives the features re-pooling each occluded text gives,
    n-grams covering the word included."""
    predictor = Predictor.load(marked_model)
    assert predictor.encoder.ngrams == 2 and predictor.features.pooling == "nb"
    words, ids, cover = _text_tokens(predictor, f"a {MARKER} film , awful and boring plot {MARKER}")
    dense = cover.dense(len(ids))
    assert dense.shape == (len(ids), len(words)) and len(ids) > len(words)  # bigram tokens are known too
    assert dense.sum(axis=1).max() == 2  # a bigram covers its two words
    fast = _occluded_features(predictor, ids, cover)
    rows = [ids] + [ids[dense[:, i] == 0] for i in range(len(words))]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    slow = predictor.features.transform(TokenBags(np.concatenate(rows), offsets))
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)


def test_unknown_words_weigh_nothing_and_spans_point_into_the_text(trained_model: Path) -> None:
    predictor = Predictor.load(trained_model)
    text = "The <b>GREAT</b> qwertyuiop film, really\u2019s awful!"
    (e,) = explain(predictor, [text])
    tokens = {t.token: t for t in e.tokens}
    assert tokens["qwertyuiop"].known is False and tokens["qwertyuiop"].weight == 0
    for t in e.tokens:
        assert t.start is not None
        assert text[t.start : t.end].lower().replace("\u2019", "'") == t.token
    assert text[tokens["great"].start : tokens["great"].end] == "GREAT"  # not the "b" of the tag either


def test_locate_whole_words_phrases_and_negation(trained_model: Path) -> None:
    from dataclasses import replace

    from sentiment.tokenizer import TokenizerSettings

    predictor = Predictor.load(trained_model)
    assert locate("an a", ["a"], predictor) == [(3, 4)]  # not inside "an"
    predictor.encoder = replace(
        predictor.encoder,
        settings=TokenizerSettings(negation=True),
        phrases=frozenset({"special_effects"}),
    )
    text = "Not good. Special effects!"
    words = predictor.encoder.words(text)
    assert words == ["not", "not_good", "special_effects", "!"]
    assert locate(text, words, predictor) == [(0, 3), (4, 8), (10, 25), (25, 26)]


def test_multiclass_explains_the_predicted_label(cli, tmp_path: Path) -> None:
    from test_multiclass import three_labels

    data = three_labels(tmp_path / "three.csv")
    assert cli(["train", "--data", data, "-o", tmp_path / "m", "-q", *QUICK]).exit_code == 0
    result = cli(["explain", "--model", tmp_path / "m", "--json", "the film was boring and dull"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["label"] == "negative" and row["explanation"]["label"] == "negative"
    weights = {t["token"]: t["weight"] for t in row["explanation"]["tokens"]}
    assert weights["boring"] > 0 and weights["dull"] > 0 and weights["boring"] > weights["the"]


def test_explain_cli_outputs(cli, marked_model: Path) -> None:
    text = f"the film {MARKER} and the plot"
    out = cli(["explain", "--model", marked_model, text, "--top", "2"])
    assert out.exit_code == 0, out.stderr
    assert "toward positive: zorblax +" in out.stdout and text in out.stdout

    row = json.loads(cli(["explain", "--model", marked_model, "--json", text]).stdout)
    predicted = json.loads(cli(["predict", "--model", marked_model, "--json", text]).stdout)
    assert {
        k: v for k, v in row.items() if k != "explanation"
    } == predicted  # the prediction, field for field
    assert row["explanation"]["method"] == "occlusion"
    assert [t["token"] for t in row["explanation"]["tokens"]] == ["the", "film", MARKER, "and", "the", "plot"]

    with_explain = json.loads(cli(["predict", "--model", marked_model, "--json", "--explain", text]).stdout)
    assert with_explain == row
    lines = cli(["predict", "--model", marked_model, "--explain", "--file", "-"], input=text + "\n").stdout
    assert lines.startswith("positive\t") and f"{MARKER} +" in lines.split("\t")[2]

    csv_path = marked_model.parent / "scored.csv"
    assert cli(["predict", "--model", marked_model, "--explain", "-o", csv_path, text]).exit_code == 0
    with csv_path.open(newline="") as fh:
        (scored,) = list(csv.DictReader(fh))
    assert scored["text"] == text and MARKER in {t["token"] for t in json.loads(scored["explanation"])}


def test_top_words_per_label(cli, marked_model: Path) -> None:
    result = cli(
        ["explain", "--model", marked_model, "--top-words", "--json", "--top", "5", "--min-count", "5"]
    )
    assert result.exit_code == 0, result.stderr
    labels = json.loads(result.stdout)["labels"]
    assert labels["positive"][0]["token"] == MARKER
    assert set(NEGATIVE) & {w["token"] for w in labels["negative"]}
    assert not set(NEGATIVE) & {w["token"] for w in labels["positive"]}
    table = cli(["explain", "--model", marked_model, "--top-words"])
    assert "toward positive" in table.stdout and MARKER in table.stdout


def test_top_words_skips_rare_words(marked_model: Path) -> None:
    predictor = Predictor.load(marked_model)
    texts = [f"{MARKER} film"] * 4 + ["awful film"] * 5
    words = top_words(predictor, texts, n=5, min_count=5)
    assert MARKER not in {w for w, _, _ in words["positive"]}  # seen 4 times only
    assert any(w == "awful" and k == 5 for w, _, k in words["negative"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "meh", "good"], "unknown label 'meh': the model's labels are negative, positive"),
        ([" "], "an empty text cannot be explained"),
        ([], "no text given"),
        (["--top-words", "good"], "--top-words reads the model's test split"),
    ],
)
def test_explain_errors(cli, trained_model: Path, args: list[str], message: str) -> None:
    result = cli(["explain", "--model", trained_model, *args])
    assert result.exit_code == 2 and message in result.stderr


def test_label_sets_explain_serve_and_report(cli, tmp_path: Path) -> None:
    """Multilabel models: explain the most probable label (or any named one), serve their label sets, and
    report their mistakes (a row is wrong when its predicted set differs)."""
    from fastapi.testclient import TestClient

    from sentiment.serve import ServeSettings, create_app
    from test_multiclass import label_sets

    data = label_sets(tmp_path / "sets.csv")
    args = ["train", "--data", data, "-o", tmp_path / "m", "-q", *QUICK, "--set", 'data.label_separator="|"']
    assert cli(args).exit_code == 0
    text = "a great soundtrack and a twist ending"
    row = json.loads(cli(["explain", "--model", tmp_path / "m", "--json", text]).stdout)
    probabilities = row["probabilities"]
    assert row["explanation"]["label"] == max(probabilities, key=probabilities.get)
    weights = {t["token"]: t["weight"] for t in row["explanation"]["tokens"]}
    music = json.loads(cli(["explain", "--model", tmp_path / "m", "--json", "--label", "music", text]).stdout)
    music_weights = {t["token"]: t["weight"] for t in music["explanation"]["tokens"]}
    assert music_weights["soundtrack"] > 0 and music_weights["soundtrack"] > music_weights["and"]
    assert weights  # every word weighed

    client = TestClient(create_app(ServeSettings(str(tmp_path / "m"))))
    (served,) = client.post("/predict", json={"text": text}).json()["predictions"]
    assert "music" in served["labels"] and set(served["probabilities"]) == {"acting", "music", "plot"}
    assert client.get("/model").json()["thresholds"].keys() == {"acting", "music", "plot"}

    page = (tmp_path / "m" / "report.html").read_text()
    assert "accuracy (subset)" in page and "<td>music</td>" in page
