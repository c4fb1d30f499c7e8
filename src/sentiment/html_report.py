"""``report.html``: one self-contained page per model directory, to look at a run rather than read it.

Metrics (test beside validation), the per-class table, the plots (inline PNG), the epoch history, the config,
and the most confident mistakes on the test split with each word coloured by its push (``sentiment.explain``).
Built from the files of the model directory alone, so ``sentiment report`` can (re)build it for any model;
``train`` builds it while the directory is still being written. No script, no network: it opens offline.
"""

from __future__ import annotations

import base64
import csv
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentiment.explain import Explanation, explain
from sentiment.predictor import Predictor
from sentiment.report import binary_per_class, confusion_layout, metric_names

REPORT = "report.html"
MISTAKES = 20
HEADER_CHARS = 80  # class names longer than this in all head the confusion matrix's columns by number

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
  color: #222; }
h1 { font-size: 1.5rem; margin-bottom: 0; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: .2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .2rem .7rem; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; } .plots figure { margin: 0; }
.plots img { max-width: 28rem; border: 1px solid #eee; }
.wide { overflow-x: auto; } .confusion td:first-child { white-space: nowrap; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; font-size: .85rem; }
.mistake { border: 1px solid #ddd; border-radius: .4rem; padding: .6rem .8rem; margin: .8rem 0; }
.mistake .head { font-weight: 600; } .mistake .text { margin-top: .3rem; white-space: pre-wrap; }
.legend { color: #666; font-size: .85rem; }
.scroll { max-height: 24rem; overflow-y: auto; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return _e(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def metrics_section(metrics: dict[str, Any], labels: Sequence[str]) -> str:
    test, validation = metrics.get("test") or {}, metrics.get("validation") or {}
    shown = [*metric_names(test), *([("n", "n")] if "n" in test else [])]
    rows = [[name, test[key], validation.get(key, "")] for name, key in shown]
    threshold = metrics.get("threshold")
    if isinstance(threshold, list):  # label sets: one per label, in label order
        rows.append(["thresholds", ", ".join(f"{t:.4f}" for t in threshold), ""])
    elif threshold is not None:
        rows.append(["threshold", float(threshold), ""])
    parts = ['<h2 id="metrics">Metrics</h2>', _table(["metric", "test", "validation"], rows, "metrics")]
    per_class = per_class_rows(test, labels)
    if per_class:
        parts += [
            "<h3>Per class (test)</h3>",
            _table(["class", "precision", "recall", "f1", "support"], per_class, "per-class"),
        ]
    cm = test.get("confusion_matrix")
    if isinstance(cm, dict):
        neg, pos = labels
        cm_rows = [[neg, cm["tn"], cm["fp"]], [pos, cm["fn"], cm["tp"]]]
        parts += [
            "<h3>Confusion matrix (rows: true, columns: predicted)</h3>",
            _table(["", neg, pos], cm_rows),
        ]
    elif isinstance(cm, list):
        names = list(test.get("per_class", labels))
        # names head the columns while they fit the page; else numbers do, and each row starts with its number
        title, heads, cm_rows = confusion_layout(names, cm, numbered=sum(map(len, names)) > HEADER_CHARS)
        # a matrix wider than the page still scrolls by itself, not the page
        parts += [
            f"<h3>{title}</h3>",
            f'<div class="wide">{_table(["", *heads], cm_rows, "confusion")}</div>',
        ]
    return "\n".join(parts)


def per_class_rows(test: dict[str, Any], labels: Sequence[str]) -> list[list[Any]]:
    if "per_class" in test:
        return [
            [name, f["precision"], f["recall"], f["f1"], f["support"]]
            for name, f in test["per_class"].items()
        ]
    cm = test.get("confusion_matrix")
    return [list(row) for row in binary_per_class(cm, *labels)] if isinstance(cm, dict) else []


def plots_section(model_dir: Path) -> str:
    figures = []
    for png in sorted(model_dir.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        figures.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{_e(png.stem)}">'
            f"<figcaption>{_e(png.name)}</figcaption></figure>"
        )
    return '<h2 id="plots">Plots</h2><div class="plots">' + "".join(figures) + "</div>" if figures else ""


def history_section(model_dir: Path) -> str:
    from sentiment.errors import ModelDirError

    path = model_dir / "history.csv"
    if not path.is_file():
        return ""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ModelDirError(
            f"{path}: unreadable ({type(exc).__name__}); retrain or re-download the model"
        ) from None
    if len(rows) < 2:
        return ""

    def cell(value: str) -> Any:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number

    body = [[cell(v) for v in row] for row in rows[1:]]
    return '<h2 id="history">History</h2><div class="scroll">' + _table(rows[0], body, "history") + "</div>"


def highlighted(explanation: Explanation) -> str:
    """The text as HTML, each located word in a span coloured by its weight (green toward, red away)."""
    text = explanation.prediction.text
    scale = max((abs(t.weight) for t in explanation.tokens), default=0.0)
    out, cursor = [], 0
    for t in explanation.tokens:
        if t.start is None or t.start < cursor:
            continue
        out.append(_e(text[cursor : t.start]))
        style = ""
        if t.weight and scale > 0:
            fade = int(255 - 150 * min(abs(t.weight) / scale, 1.0))
            colour = f"rgb({fade},255,{fade})" if t.weight > 0 else f"rgb(255,{fade},{fade})"
            style = f' style="background:{colour}"'
        out.append(
            f'<span class="word" data-weight="{t.weight:.6f}" title="{_e(t.token)}: {t.weight:+.4f}"{style}>'
            f"{_e(text[t.start : t.end])}</span>"
        )
        cursor = t.end
    out.append(_e(text[cursor:]))
    return "".join(out)


def confident_mistakes(
    predictor: Predictor,
    texts: list[str],
    truth: list[Any],
    n: int = MISTAKES,
    workers: int = 1,
    probs: np.ndarray | None = None,
) -> list[tuple[Explanation, str]]:
    """The ``n`` test texts the model got wrong with the most confidence, explained; with their true label.
    ``probs``: the texts' probabilities when already known (``train`` has them), else they are predicted."""
    if probs is not None and len(probs) == len(texts):
        predictions = predictor.decide(texts, probs, np.zeros(len(texts), dtype=np.int64))
    else:
        predictions = predictor.predict(texts, workers=workers)
    wrong = []
    for i, (p, true) in enumerate(zip(predictions, truth, strict=True)):
        if predictor.multilabel:
            true_set = sorted(true) if isinstance(true, list) else [true]
            if sorted(p.labels or []) != true_set:
                # how sure it was of its wrongest label: the largest distance from the truth
                error = max(abs(prob - (name in true_set)) for name, prob in p.probabilities.items())
                wrong.append((error, i, ", ".join(true_set) or "(none)"))
        elif p.label != true:
            wrong.append((p.probabilities[p.label], i, str(true)))
    wrong.sort(key=lambda item: (-item[0], item[1]))
    chosen = wrong[:n]
    explained = explain(predictor, [texts[i] for _, i, _ in chosen])
    return [(e, true) for e, (_, _, true) in zip(explained, chosen, strict=True)]


def mistakes_section(mistakes: list[tuple[Explanation, str]], total: int) -> str:
    parts = [
        f'<h2 id="mistakes">The {len(mistakes)} most confident mistakes on the test split</h2>',
        '<p class="legend">Green words pushed toward the predicted label, red ones away from it: a word\'s '
        "weight is the change in the label's log-odds when the word is left out (occlusion). "
        "Hover a word for its weight.</p>",
    ]
    if not mistakes:
        parts.append(f"<p>No mistakes on the {total} test texts.</p>")
    for rank, (e, true) in enumerate(mistakes, 1):
        p = e.prediction
        toward, away = e.top(5)
        pushes = "; ".join(
            f"{title}: " + (", ".join(f"{_e(t.token)} {t.weight:+.3f}" for t in words) or "none")
            for title, words in ((f"toward {_e(e.label)}", toward), ("away", away))
        )
        head = f'{rank}. predicted <b class="predicted">{_e(p.label)}</b> (P = {e.probability:.3f}), '
        head += f'true <b class="true">{_e(true)}</b>'
        parts.append(
            f'<div class="mistake"><div class="head">{head}</div><div class="legend">{pushes}</div>'
            f'<div class="text">{highlighted(e)}</div></div>'
        )
    return "\n".join(parts)


def build(
    model_dir: Path,
    predictor: Predictor | None = None,
    workers: int = 1,
    shown_as: Path | None = None,
    test_probs: np.ndarray | None = None,
) -> str:
    """The report page of a model directory, as a string. ``workers``: processes scoring the test split (1
    inside ``train``, whose process holds torch's threads and should not fork); ``shown_as``: the path to
    name on the page (``train`` writes it into a temporary directory that is then renamed); ``test_probs``:
    the saved test rows' probabilities, when known (``train``: scoring them again took 3-5 s on IMDB)."""
    from sentiment.modeldir import read_metrics, read_test_rows

    predictor = predictor or Predictor.load(model_dir)
    meta = predictor.meta
    metrics = read_metrics(model_dir, meta.labels)
    config_path = model_dir / "config.yaml"
    config = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    try:
        texts, truth = read_test_rows(model_dir)
    except Exception:  # an old or partial directory: the rest of the report still helps
        texts, truth = [], []
    mistakes = confident_mistakes(predictor, texts, truth, workers=workers, probs=test_probs) if texts else []
    rows = meta.data.get("rows") if isinstance(meta.data, dict) else None
    facts = [
        ["task", meta.task or "binary"],
        ["labels", ", ".join(meta.labels)],
        ["created", meta.created],
        ["sentiment version", meta.sentiment_version],
        ["device", meta.device],
        ["best epoch", meta.best_epoch],
    ]
    if rows:
        facts.append(
            [
                "rows (train / validation / test)",
                " / ".join(str(rows.get(k, "-")) for k in ("train", "val", "test")),
            ]
        )
    if meta.data.get("source"):
        facts.append(["data", meta.data["source"]])
    shown = (shown_as or model_dir).resolve()
    title = f"sentiment report: {shown.name}"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(shown)}</p>',
        _table(["run", ""], facts, "facts"),
        metrics_section(metrics, meta.labels),
        plots_section(model_dir),
        history_section(model_dir),
        mistakes_section(mistakes, len(texts)),
        f'<h2 id="config">Config</h2><pre class="config">{_e(config)}</pre>',
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body></html>\n"
    )


def write(
    model_dir: Path,
    predictor: Predictor | None = None,
    workers: int = 1,
    shown_as: Path | None = None,
    test_probs: np.ndarray | None = None,
) -> Path:
    """Write ``report.html`` into a model directory (atomically: a reader never sees half a page)."""
    from sentiment.atomic import write_atomic

    page = build(model_dir, predictor, workers, shown_as, test_probs)
    path = model_dir / REPORT
    write_atomic(path, page)
    return path
