"""Accuracy benchmark: our systems against the TF-IDF + logistic-regression peer, in one run.

By default it holds out a seeded, stratified 20 % of ``../shared/data/imdb/train.csv.gz`` as the run's test
set (a validation split for tuning: the official IMDB test split is never used here); each config then carves
its own validation split for early stopping from the other 80 %. --train/--test take any pair of files.

    .venv/bin/python scripts/benchmark_accuracy.py                        # IMDB validation split, all systems
    .venv/bin/python scripts/benchmark_accuracy.py --systems plain best --set training.epochs=5
    .venv/bin/python scripts/benchmark_accuracy.py --train a.csv --test b.csv --no-unlabeled --json out.json
    .venv/bin/python scripts/benchmark_accuracy.py --train ../shared/data/kaggle-cleaned/IMDB_cleaned.csv \
        --tail --no-unlabeled --systems tutorial default tfidf_lr     # the 5,000-row stand-in, tutorial split
    .venv/bin/python scripts/benchmark_accuracy.py --task ratings     # four star-rating buckets, macro-F1

Systems: tutorial (configs/tutorial.yaml), plain (configs/imdb_plain.yaml: frozen averaged Word2Vec into the
SimpleMLP), best (configs/imdb.yaml), tfidf_lr (scikit-learn TF-IDF uni+bigrams + logistic regression);
default (configs/default.yaml, tuned for the 5,000-row stand-in) runs only when named.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_TRAIN = SHARED / "imdb" / "train.csv.gz"
DEFAULT_UNLABELED = SHARED / "imdb" / "unlabeled.csv.gz"
CONFIGS = {
    "tutorial": ROOT / "configs" / "tutorial.yaml",
    "plain": ROOT / "configs" / "imdb_plain.yaml",
    "best": ROOT / "configs" / "imdb.yaml",
    "default": ROOT / "configs" / "default.yaml",
}
SYSTEMS = (*CONFIGS, "tfidf_lr")
DEFAULT_SYSTEMS = ("tutorial", "plain", "best", "tfidf_lr")
TEXT_COLUMNS = ("review", "cleaned_review", "text")


@dataclass
class Row:
    system: str
    accuracy: float
    f1: float
    seconds: float
    detail: str = ""


@dataclass
class Files:
    train: Path
    test: Path
    unlabeled: Path | None
    text_column: str
    label_column: str
    positive_label: str


def _pick_text_column(columns: Sequence[str], wanted: str | None) -> str:
    if wanted:
        return wanted
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise SystemExit(f"no text column among {list(columns)}; pass --text-column")


def prepare_files(args: argparse.Namespace, workdir: Path) -> Files:
    """The run's train and test files: the given pair, or a hold-out of --train (seeded and stratified, or
    with --tail its last rows in file order, the tutorial's split)."""
    from sentiment.data import read_table

    train = Path(args.train)
    frame = read_table(train)
    text_column = _pick_text_column(list(frame.columns), args.text_column)
    unlabeled = None if args.no_unlabeled or not args.unlabeled else Path(args.unlabeled)
    if unlabeled is not None and not unlabeled.exists():
        print(f"note: {unlabeled} not found; Word2Vec trains on the training text only", file=sys.stderr)
        unlabeled = None
    files = Files(
        train,
        Path(args.test) if args.test else train,
        unlabeled,
        text_column,
        args.label_column,
        args.positive_label,
    )
    if args.test:
        return files
    if args.tail:
        n_held = round(len(frame) * args.holdout)
        keep, held = frame.iloc[: len(frame) - n_held], frame.iloc[len(frame) - n_held :]
    else:
        from sklearn.model_selection import train_test_split

        keep, held = train_test_split(
            frame,
            test_size=args.holdout,
            stratify=frame[args.label_column],
            random_state=args.seed,
            shuffle=True,
        )
    files.train, files.test = workdir / "train.csv", workdir / "holdout.csv"
    keep.to_csv(files.train, index=False)
    held.to_csv(files.test, index=False)
    return files


def _overrides(files: Files, extra: Sequence[str]) -> list[str]:
    data = [
        f"data.path={files.train}",
        f"data.test_path={files.test}",
        f"data.text_column={files.text_column}",
        f"data.label_column={files.label_column}",
        f"data.positive_label={files.positive_label}",
        f"data.unlabeled_path={files.unlabeled if files.unlabeled else 'null'}",
    ]
    return [*data, *extra]


def run_config(
    name: str, config_path: Path, files: Files, extra: Sequence[str], workdir: Path, verbose: bool = False
) -> Row:
    from sentiment.config import load_config
    from sentiment.pipeline import train
    from sentiment.progress import Reporter

    overrides = _overrides(files, extra)
    if name == "tutorial":
        # The tutorial's Word2Vec sees only its training text, as in the tutorial.
        overrides = [o for o in overrides if not o.startswith("data.unlabeled_path=")]
        overrides.append("data.unlabeled_path=null")
    config = load_config(config_path, overrides)
    start = time.perf_counter()
    out = train(config, workdir / name, config_name=name, reporter=Reporter(quiet=not verbose, live=False))
    seconds = time.perf_counter() - start
    val = out.val_metrics["accuracy"] if out.val_metrics else None
    detail = f"val acc {val:.4f}" if val is not None else ""
    return Row(name, out.metrics["accuracy"], out.metrics["f1"], seconds, detail)


_TAG = re.compile(r"<[^>]*>")


def run_tfidf_lr(files: Files, seed: int, c: float = 4.0) -> Row:
    """The peer: TF-IDF over word uni+bigrams (sublinear tf) + logistic regression, markup stripped."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from sentiment.data import read_table

    start = time.perf_counter()
    columns = [files.text_column, files.label_column]
    train = read_table(files.train, columns).dropna()
    test = read_table(files.test, columns).dropna()

    def texts(frame) -> list[str]:
        return [_TAG.sub(" ", t) for t in frame[files.text_column].astype(str)]

    def labels(frame):
        return (frame[files.label_column].astype(str).str.strip() == files.positive_label).to_numpy()

    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_df=0.95, sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b"
    )
    x_train = vectorizer.fit_transform(texts(train))
    clf = LogisticRegression(C=c, max_iter=2000, solver="liblinear", random_state=seed)
    clf.fit(x_train, labels(train))
    pred = clf.predict(vectorizer.transform(texts(test)))
    y = labels(test)
    seconds = time.perf_counter() - start
    accuracy, f1 = float(accuracy_score(y, pred)), float(f1_score(y, pred))
    return Row("tfidf_lr", accuracy, f1, seconds, f"{x_train.shape[1]} features, C={c:g}")


def run_ratings(args: argparse.Namespace, log: Callable[[str], None]) -> list[Row]:
    """The multiclass ratings task: the same runs as scripts/benchmark_ratings.py; ``f1`` is macro-F1."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "benchmark_ratings", ROOT / "scripts" / "benchmark_ratings.py"
    )
    assert spec is not None and spec.loader is not None
    ratings = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ratings)
    with tempfile.TemporaryDirectory(prefix="sentiment-bench-") as tmp:
        work = Path(tmp)
        train, test = ratings.split_by_movie(Path(args.train), args.seed, work)
        figures = {"imdb_ratings": ratings.ours(train, test, work), "tfidf_lr": ratings.tfidf_lr(train, test)}
    rows = [
        Row(name, f["accuracy"], f["macro_f1"], f["seconds"], "macro-F1; movie-disjoint hold-out")
        for name, f in figures.items()
    ]
    log(format_table(rows))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    lines = [f"{'system':<10} {'accuracy':>9} {'F1':>7} {'seconds':>9}  detail", "-" * 56]
    lines += [f"{r.system:<10} {r.accuracy:>9.4f} {r.f1:>7.4f} {r.seconds:>9.1f}  {r.detail}" for r in rows]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", default=str(DEFAULT_TRAIN), help="labelled training file")
    parser.add_argument("--test", help="labelled test file (default: hold out --holdout of --train)")
    parser.add_argument("--unlabeled", default=str(DEFAULT_UNLABELED), help="extra text for Word2Vec")
    parser.add_argument("--no-unlabeled", action="store_true", help="Word2Vec on the training text only")
    parser.add_argument("--holdout", type=float, default=0.2, help="fraction of --train held out")
    parser.add_argument("--seed", type=int, default=42, help="seed of the hold-out split")
    parser.add_argument(
        "--tail",
        action="store_true",
        help="hold out the last --holdout rows in file order (the tutorial's split), not a seeded sample",
    )
    parser.add_argument("--text-column", help="text column (default: review, cleaned_review or text)")
    parser.add_argument("--label-column", default="sentiment")
    parser.add_argument("--positive-label", default="positive")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(DEFAULT_SYSTEMS))
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=YAML",
        help="replace or add a system's config, e.g. best=configs/other.yaml",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override applied to every config system (repeatable)",
    )
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--keep", help="keep the model directories under this folder")
    parser.add_argument("--verbose", "-v", action="store_true", help="the pipeline's log lines (stderr)")
    parser.add_argument(
        "--task",
        choices=("sentiment", "ratings"),
        default="sentiment",
        help="ratings: the four star-rating buckets, configs/imdb_ratings.yaml against TF-IDF + LR on a "
        "movie-disjoint hold-out, accuracy and macro-F1 (scripts/benchmark_ratings.py)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> list[Row]:
    args = parse_args(argv)
    if args.task == "ratings":
        return run_ratings(args, log)
    configs = dict(CONFIGS)
    systems = list(args.systems)
    for item in args.config:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"--config {item}: expected NAME=YAML")
        configs[name] = Path(path)
        if name not in systems:
            systems.append(name)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="sentiment-bench-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        files = prepare_files(args, Path(tmp))
        log(f"train {files.train} / test {files.test} / unlabelled {files.unlabeled}")
        for name in systems:
            row = (
                run_tfidf_lr(files, args.seed)
                if name == "tfidf_lr"
                else run_config(name, configs[name], files, args.set, workdir, args.verbose)
            )
            rows.append(row)
            log(
                f"{row.system}: accuracy {row.accuracy:.4f}  F1 {row.f1:.4f}  {row.seconds:.1f} s  "
                f"{row.detail}"
            )
    log(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
