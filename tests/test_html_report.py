"""report.html: written by `train` into every model directory, rebuilt by `sentiment report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sentiment import html_report


def test_train_writes_a_self_contained_report(trained_model: Path) -> None:
    page = (trained_model / "report.html").read_text(encoding="utf-8")
    metrics = json.loads((trained_model / "metrics.json").read_text())
    test, cm = metrics["test"], metrics["test"]["confusion_matrix"]
    assert (
        f"<td>accuracy</td><td>{test['accuracy']:.4f}</td><td>{metrics['validation']['accuracy']:.4f}" in page
    )
    # per class, from the confusion matrix: the positive class's recall
    recall = cm["tp"] / (cm["tp"] + cm["fn"])
    assert re.search(rf"<td>positive</td><td>[0-9.]+</td><td>{recall:.4f}</td>", page)
    # every plot inline, nothing to fetch: it opens offline
    pngs = sorted(p.name for p in trained_model.glob("*.png"))
    assert len(pngs) >= 4 and page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    epochs = len((trained_model / "history.csv").read_text().splitlines()) - 1
    history = page[page.index('class="history"') :]
    assert history[: history.index("</table>")].count("<tr>") == epochs + 1
    assert "hidden_dims:" in page  # the config
    # the most confident mistakes: as many as the test split has, up to 20, each explained
    wrong = cm["fp"] + cm["fn"]
    assert page.count('<div class="mistake">') == min(wrong, html_report.MISTAKES)
    if wrong:
        assert 'class="word" data-weight=' in page


def test_mistakes_are_the_most_confident_wrong_ones(trained_model: Path) -> None:
    from sentiment.predictor import Predictor

    predictor = Predictor.load(trained_model)
    texts = ["a wonderful superb film", "awful boring dull", "great loved it", "the worst waste"]
    truth = ["negative", "positive", "positive", "positive"]  # three wrong, one right
    mistakes = html_report.confident_mistakes(predictor, texts, truth, n=2)
    confidence = {t: p.probabilities[p.label] for t, p in zip(texts, predictor.predict(texts), strict=True)}
    wrong = sorted(
        (t for t, y in zip(texts, truth, strict=True) if predictor.predict([t])[0].label != y),
        key=lambda t: -confidence[t],
    )
    assert [e.prediction.text for e, _ in mistakes] == wrong[:2]
    assert [true for _, true in mistakes] == [truth[texts.index(t)] for t in wrong[:2]]


def test_text_is_escaped(trained_model: Path) -> None:
    from sentiment.explain import explain
    from sentiment.predictor import Predictor

    (e,) = explain(Predictor.load(trained_model), ["<script>alert(1)</script> a great film & more"])
    out = html_report.highlighted(e)
    assert "<script>" not in out and "&lt;script&gt;" in out and "&amp; <span" in out


def test_report_command_rebuilds_it(cli, trained_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained_model, copy)
    (copy / "report.html").unlink()
    result = cli(["report", "--model", copy])
    assert result.exit_code == 0 and "report written to" in result.stdout
    assert (copy / "report.html").read_text() == (trained_model / "report.html").read_text().replace(
        str(trained_model.resolve()), str(copy.resolve())
    ).replace(f"sentiment report: {trained_model.resolve().name}", f"sentiment report: {copy.name}")
    missing = cli(["report", "--model", tmp_path / "none"])
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_multiclass_report(cli, tmp_path: Path) -> None:
    from test_multiclass import QUICK, three_labels

    data = three_labels(tmp_path / "three.csv")
    assert cli(["train", "--data", data, "-o", tmp_path / "m", "-q", *QUICK]).exit_code == 0
    page = (tmp_path / "m" / "report.html").read_text()
    test = json.loads((tmp_path / "m" / "metrics.json").read_text())["test"]
    assert "<td>precision (macro)</td>" in page
    for name, figures in test["per_class"].items():
        assert f"<td>{name}</td><td>{figures['precision']:.4f}</td>" in page
    matrix = page[page.index("Confusion matrix") :]
    assert "<th></th><th>mixed</th><th>negative</th><th>positive</th>" in matrix


def test_a_confusion_matrix_of_30_long_names_is_numbered_and_scrolls_by_itself() -> None:
    """30 class names heading the columns pushed the page sideways: numbers head them instead, each row
    starts with its number and name, and the table scrolls inside its own box."""
    from sentiment.html_report import metrics_section

    names = [f"emotion_{i:02d}_long_name" for i in range(30)]
    matrix = [[9 if i == j else 0 for j in range(30)] for i in range(30)]
    figures = {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 9}
    test = {"accuracy": 1.0, "n": 270, "confusion_matrix": matrix, "per_class": dict.fromkeys(names, figures)}
    section = metrics_section({"test": test}, names)
    table = section[section.index("Confusion matrix (rows: true, columns: predicted, by number)") :]
    assert table.count('<div class="wide"><table class="confusion">') == 1
    assert "<th></th><th>1</th><th>2</th>" in table and "<th>30</th></tr></thead>" in table
    assert "<tr><td>30 emotion_29_long_name</td>" + "<td>0</td>" * 29 + "<td>9</td></tr>" in table
    assert "<th>emotion_00_long_name</th>" not in table
