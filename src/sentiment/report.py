"""Human-readable output: metric tables, prediction tables, prediction CSVs."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sentiment.errors import DataError

if TYPE_CHECKING:
    import pandas as pd
    from rich.text import Text

    from sentiment.explain import Explanation
    from sentiment.predictor import Prediction


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def print_metrics(
    metrics: dict[str, Any],
    *,
    title: str,
    validation: dict[str, Any] | None = None,
    per_class: bool = False,
) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("test" if validation else "value", justify="right")
    if validation:
        table.add_column("validation", justify="right")
    multiclass = "hamming_loss" in metrics or isinstance(metrics["confusion_matrix"], list)
    for name, key in metric_names(metrics):
        row = [name, f"{metrics[key]:.4f}"]
        if validation:
            row.append(f"{validation[key]:.4f}" if validation.get(key) is not None else "")
        table.add_row(*row)
    table.add_row("n", str(metrics["n"]), *([str(validation["n"])] if validation else []))
    if metrics.get("threshold") is not None:
        table.add_row("threshold", f"{metrics['threshold']:.4f}", *([""] if validation else []))
    console = _console()
    console.print(table)
    if multiclass:
        _print_multiclass(console, metrics)
        return
    cm = metrics["confusion_matrix"]
    labels = metrics.get("labels", {"negative": "negative", "positive": "positive"})
    neg, pos = labels["negative"], labels["positive"]
    cm_table = Table(title="Confusion matrix (rows: true, columns: predicted)", title_justify="left")
    cm_table.add_column("")
    cm_table.add_column(neg, justify="right")
    cm_table.add_column(pos, justify="right")
    cm_table.add_row(neg, str(cm["tn"]), str(cm["fp"]))
    cm_table.add_row(pos, str(cm["fn"]), str(cm["tp"]))
    console.print(cm_table)
    if per_class:
        console.print(_per_class_table(cm, neg, pos))
    if metrics.get("no_known_words"):
        console.print(f"{metrics['no_known_words']} text(s) had no known word (scored from a zero vector)")


def _print_multiclass(console: Any, metrics: dict[str, Any]) -> None:
    from rich.table import Table

    names = list(metrics["per_class"])
    multilabel = "hamming_loss" in metrics
    if not multilabel:
        matrix = metrics["confusion_matrix"]
        cm_table = _confusion_table(names, matrix, console.width)
        if cm_table is not None:
            console.print(cm_table)
        else:  # squeezed into the terminal, rich would print every cell empty
            console.print(
                f"Confusion matrix: {len(names)} x {len(names)}, wider than this terminal ({console.width} "
                "columns): see --json's confusion_matrix, or the model's confusion_matrix.png",
                markup=False,
            )
    per_class = Table(title="Per label" if multilabel else "Per class", title_justify="left")
    extra = ("threshold", "tp", "fp", "fn") if multilabel else ()
    per_class.add_column("class", overflow="fold")  # a long name wraps, not cut to "emotion_…" on every row
    for column in ("precision", "recall", "f1", "support", *extra):
        per_class.add_column(column, justify="right")
    for name, figures in metrics["per_class"].items():
        cells = [f"{figures[k]:.4f}" for k in ("precision", "recall", "f1")] + [str(figures["support"])]
        if multilabel:
            cells += [f"{figures['threshold']:.4f}", *(str(figures[k]) for k in ("tp", "fp", "fn"))]
        per_class.add_row(name, *cells)
    console.print(per_class)
    if metrics.get("no_known_words"):
        console.print(f"{metrics['no_known_words']} text(s) had no known word (scored from a zero vector)")


def confusion_layout(
    names: Sequence[str], matrix: Sequence[Sequence[int]], numbered: bool
) -> tuple[str, list[str], list[list[Any]]]:
    """Title, column heads and rows of the N x N matrix, headed by the class names or, ``numbered``, by their
    numbers (each row then starts with its number and name). The terminal and report.html both show it so."""
    title = "Confusion matrix (rows: true, columns: predicted" + (", by number)" if numbered else ")")
    heads = [str(i) for i in range(1, len(names) + 1)] if numbered else list(names)
    rows = [
        [f"{i} {name}" if numbered else name, *row]
        for i, (name, row) in enumerate(zip(names, matrix, strict=True), 1)
    ]
    return title, heads, rows


def _confusion_table(names: list[str], matrix: list[list[int]], width: int) -> Any:
    """The matrix as a table that fits ``width`` columns: headed by the class names, or by their numbers when
    the names are too wide; None when neither fits."""
    from rich.console import Console
    from rich.table import Table

    measure = Console(width=1 << 20).measure  # the table's natural width: a narrow console would squeeze it
    for numbered in (False, True):
        title, heads, rows = confusion_layout(names, matrix, numbered)
        table = Table(title=title, title_justify="left")
        table.add_column("")
        for head in heads:
            table.add_column(head, justify="right")
        for row in rows:
            table.add_row(*map(str, row))
        if measure(table).maximum <= width:
            return table
    return None


def print_report_location(model_dir: Path) -> None:
    """Where the model and its report went, and what to run next."""
    console = _console()
    where = model_dir.resolve()
    files = [name for name in ("report.html", "metrics.json", "history.csv") if (where / name).is_file()]
    plots = sorted(p.name for p in where.glob("*.png"))
    console.print(f"model and report saved to {where}", markup=False)
    if files:
        console.print(f"  report: {', '.join(files)}", markup=False)
    if plots:
        console.print(f"  plots:  {', '.join(plots)}", markup=False)
    console.print(
        'next: sentiment eval  |  sentiment predict "a gripping, beautifully acted film"', markup=False
    )


def metric_names(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(shown name, key) of each headline metric present: "(macro)" for averages over several classes,
    "accuracy (subset)" for label sets. The terminal table and report.html both list these."""
    from sentiment.metrics import METRIC_KEYS

    multilabel = "hamming_loss" in metrics
    multiclass = multilabel or isinstance(metrics.get("confusion_matrix"), list)
    names = []
    for key in METRIC_KEYS:
        if metrics.get(key) is None:
            continue
        name = "accuracy (subset)" if multilabel and key == "accuracy" else key
        names.append(
            (name + (" (macro)" if multiclass and key in ("precision", "recall", "f1") else ""), key)
        )
    return names


def binary_per_class(cm: dict[str, int], neg: str, pos: str) -> list[tuple[str, float, float, float, int]]:
    """(class, precision, recall, f1, support) of both classes, from a binary confusion matrix."""
    rows = []
    for name, tp, fp, fn in ((neg, cm["tn"], cm["fn"], cm["fp"]), (pos, cm["tp"], cm["fp"], cm["fn"])):
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((name, precision, recall, f1, tp + fn))
    return rows


def _per_class_table(cm: dict[str, int], neg: str, pos: str) -> Any:
    from rich.table import Table

    table = Table(title="Per class", title_justify="left")
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, precision, recall, f1, support in binary_per_class(cm, neg, pos):
        table.add_row(name, f"{precision:.4f}", f"{recall:.4f}", f"{f1:.4f}", str(support))
    return table


def _clip(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# Control characters (ESC starts terminal sequences: a title change, colours, a cleared screen) shown escaped.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(32), 127] if chr(c) not in "\t\n\r"}


_CONTROLS_SAME_LENGTH = dict.fromkeys(_CONTROLS, "\ufffd")


def _text_cell(text: str) -> Text:
    """A text for a terminal table: no rich markup ("[bold]" in a review stays as written) and no control
    characters."""
    from rich.text import Text

    return Text(_clip(text).translate(_CONTROLS))


def _top(p: Prediction, k: int) -> str:
    return ", ".join(f"{label} {prob:.4f}" for label, prob in p.top(k))


def print_predictions(predictions: Sequence[Prediction], top_k: int | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False)
    table.add_column("label")
    table.add_column("probability", justify="right")
    if top_k:
        table.add_column(f"top {top_k}")
    table.add_column("text")
    flagged = False
    for p in predictions:
        mark = " *" if p.no_known_words else ""
        flagged |= p.no_known_words
        top = [_top(p, top_k)] if top_k else []
        table.add_row(Text(p.label + mark), f"{p.probability:.4f}", *top, _text_cell(p.text))
    console = _console()
    console.print(table)
    if flagged:
        console.print("* no word of the text is in the model's vocabulary: the prediction is a guess")


def read_text_table(path: Path, column: str) -> tuple[pd.DataFrame, list[str]]:
    """A table file and its text column (missing texts become empty strings)."""
    from sentiment.data import _columns, read_table, text_cells

    frame = read_table(path)
    if column not in frame.columns:
        raise DataError(
            f"{path}: text column '{column}' not found (use --text-column); the file has: "
            + _columns(frame.columns)
        )
    texts = ["" if t is None else t for t in text_cells(frame[column], str(path), column).tolist()]
    return frame, texts


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _csv_field(value: str) -> str:
    return _quoted(value) if any(c in value for c in ',"\r\n') else value


def _with_inputs(table: pd.DataFrame, fields: list[str]) -> pd.DataFrame:
    """The input table's columns, renamed ``input_<name>`` where a prediction field has the same name."""
    clash = {c: f"input_{c}" for c in table.columns if c in fields}
    return table.rename(columns=clash) if clash else table.copy()


PREDICTION_FIELDS = ["label", "probability", "no_known_words"]


def _weights_json(explanation: Explanation) -> str:
    import json

    tokens = explanation.to_dict()["explanation"]["tokens"]
    return json.dumps([{"token": t["token"], "weight": t["weight"]} for t in tokens], ensure_ascii=False)


def write_predictions_csv(
    path: Path,
    predictions: Sequence[Prediction],
    table: pd.DataFrame | None,
    explanations: Sequence[Explanation] | None = None,
) -> None:
    """A CSV: the input's columns (or the text) then label, probability (plain decimals) and no_known_words
    (true / false, as in JSON); with ``explanations``, an ``explanation`` column: a JSON list of
    {token, weight}."""
    from sentiment.atomic import atomic_file

    flags = ["true" if p.no_known_words else "false" for p in predictions]
    with atomic_file(path) as fh:
        if table is not None or explanations is not None:
            if table is None:
                import pandas as pd

                table = pd.DataFrame({"text": [p.text for p in predictions]})
            out = _with_inputs(table, [*PREDICTION_FIELDS, "explanation"])
            out["label"] = [p.label for p in predictions]
            out["probability"] = [f"{p.probability:.6f}" for p in predictions]
            out["no_known_words"] = flags
            if explanations is not None:
                out["explanation"] = [_weights_json(e) for e in explanations]
            out.to_csv(fh, index=False)
            return
        # Rows built by hand, every text quoted with its quotes doubled (RFC 4180): 6x faster than
        # csv.writer, whose per-character scan of 25,000 reviews took longer than predicting them.
        label = {name: _csv_field(name) for name in {p.label for p in predictions}}
        fh.write("text,label,probability,no_known_words\r\n")
        fh.writelines(
            f"{_quoted(p.text)},{label[p.label]},{p.probability:.6f},{flag}\r\n"
            for p, flag in zip(predictions, flags, strict=True)
        )


def write_predictions_json(
    stream: TextIO,
    predictions: Sequence[Prediction] | Sequence[Explanation],
    table: pd.DataFrame | None,
    top_k: int | None = None,
) -> None:
    """JSON lines, one object per text; a table file's other columns (an id, say) come first; ``top_k`` adds
    ``top``, the most probable labels in order. Explanations add their ``explanation`` object."""
    import json

    dicts = [p.to_dict(top_k) for p in predictions]
    if table is not None:
        rows = _with_inputs(table, list(dicts[0]) if dicts else []).to_dict(orient="records")
        dicts = [{**_json_safe(row), **d} for row, d in zip(rows, dicts, strict=True)]
    ascii_only = not writes_utf8(stream)
    text = "".join(json.dumps(d, ensure_ascii=ascii_only, default=str) + "\n" for d in dicts)
    # U+0085, U+2028 and U+2029 escaped too (json escapes the other line breaks): valid JSON either way, but
    # tools that split lines at them (Python's str.splitlines, JavaScript) then see one line per text
    stream.write(text.translate(_LINE_BREAKS))


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A table row as JSON can hold it: an empty cell (NaN) or an infinite number becomes null; Python's
    json would write NaN and Infinity, which no JSON parser accepts."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}


def writes_utf8(stream: TextIO) -> bool:
    """Whether ``stream`` encodes UTF-8; else JSON goes out \\u-escaped, which every encoding holds
    (PYTHONIOENCODING=ascii, a C locale without UTF-8)."""
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "").replace("_", "")
    return encoding in ("utf8", "utf8sig")


_LINE_BREAKS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"})


def write_prediction_lines(
    stream: TextIO,
    predictions: Sequence[Prediction],
    top_k: int | None = None,
    explanations: Sequence[Explanation] | None = None,
    top_words: int = 5,
) -> None:
    """One line per text: label, probability, (with ``top_k``: the most probable labels, "label p, ..."),
    (with ``explanations``: the words that pushed most, "word +0.1234, ..."), the text on one line;
    tab-separated, ``*`` after the label when no word of the text is known."""
    lines = []
    for i, p in enumerate(predictions):
        label = f"{p.label}{'*' if p.no_known_words else ''}"
        top = f"{_top(p, top_k)}\t" if top_k else ""
        words = f"{_strongest(explanations[i], top_words)}\t" if explanations is not None else ""
        lines.append(f"{label}\t{p.probability:.4f}\t{top}{words}{' '.join(p.text.split())}\n")
    stream.write("".join(lines))


def _strongest(explanation: Explanation, n: int) -> str:
    toward, away = explanation.top(n)
    return ", ".join(f"{t.token} {t.weight:+.4f}" for t in toward + away) or "-"


def _shade(weight: float, scale: float) -> str:
    """A background colour for a word: green toward the label, red away from it, stronger when larger."""
    strength = min(abs(weight) / scale, 1.0) if scale > 0 else 0.0
    fade = int(255 - 150 * strength)
    return f"black on rgb({fade},255,{fade})" if weight > 0 else f"black on rgb(255,{fade},{fade})"


def print_explanations(explanations: Sequence[Explanation], top: int = 10) -> None:
    """For a person: each text with its words coloured by their push (green toward the label, red away),
    then the strongest words each way with their weights."""
    from rich.text import Text

    console = _console()
    for i, e in enumerate(explanations):
        if i:
            console.print()
        p = e.prediction
        mark = "  (no word of the text is in the model's vocabulary: a guess)" if p.no_known_words else ""
        console.print(Text(f"{p.label}  P({e.label}) = {e.probability:.4f}{mark}", style="bold"))
        text = Text(e.prediction.text.translate(_CONTROLS_SAME_LENGTH))  # the words' spans still fit
        scale = max((abs(t.weight) for t in e.tokens), default=0.0)
        for t in e.tokens:
            # the faintest pushes stay uncoloured: on a dark terminal a near-white box is noise, not a signal
            if t.start is not None and abs(t.weight) >= 0.1 * scale > 0:
                text.stylize(_shade(t.weight, scale), t.start, t.end)
        console.print(text)
        toward, away = e.top(top)
        for title, words in ((f"toward {e.label}", toward), (f"away from {e.label}", away)):
            listed = ", ".join(f"{t.token} {t.weight:+.4f}" for t in words) or "none"
            console.print(f"  {title}: {listed}", markup=False, highlight=False)


def print_top_words(words: dict[str, list[tuple[str, float, int]]]) -> None:
    """The words the model leans on most for each label (``sentiment.explain.top_words``)."""
    from rich.table import Table

    console = _console()
    for label, rows in words.items():
        table = Table(title=f"toward {label}", title_justify="left", show_edge=False)
        table.add_column("word")
        table.add_column("mean weight", justify="right")
        table.add_column("occurrences", justify="right")
        for word, weight, count in rows:
            table.add_row(word, f"{weight:+.4f}", str(count))
        console.print(table)
