"""Accuracy benchmark: our configs, run cold through the CLI, against linear and fastText peers, in one run.

The hold-out (--split). By default it holds out 20 % of ``../shared/data/imdb/train.csv.gz`` as the run's test
set: a validation split for tuning, never the official IMDB test split, which this project does not have.

* ``movie`` (the default when the --train file has a ``movie`` column): scikit-learn's GroupShuffleSplit
  (n_splits=1, test_size=--holdout, random_state=--seed) over the movie ids, so a fifth of the movies (about a
  fifth of the rows) is held out and no movie has reviews on both sides. The official test split is
  movie-disjoint in the same way; a random hold-out shares movies with the training rows and flatters every
  model by about a point. The configs then also carve their own validation split by movie
  (``--set data.group_column=movie``).
* ``random`` (the default without a ``movie`` column): a seeded hold-out stratified by label.
* ``tail`` (``--tail`` is the same): the last --holdout rows in file order, the tutorial's split.

--test FILE skips the hold-out and tests on that file (--split then only decides whether the configs'
validation split groups by movie).

    .venv/bin/python scripts/benchmark_accuracy.py                        # IMDB, movie hold-out, all systems
    .venv/bin/python scripts/benchmark_accuracy.py --split random         # the flattering random hold-out
    .venv/bin/python scripts/benchmark_accuracy.py --systems plain best --set training.epochs=5
    .venv/bin/python scripts/benchmark_accuracy.py --systems tfidf_lr nbsvm2 nbsvm3 fasttext   # peers only
    .venv/bin/python scripts/benchmark_accuracy.py --train a.csv --test b.csv --no-unlabeled --json out.json
    .venv/bin/python scripts/benchmark_accuracy.py --train ../shared/data/kaggle-cleaned/IMDB_cleaned.csv \
        --tail --no-unlabeled --systems tutorial default tfidf_lr     # the 5,000-row stand-in, tutorial split
    .venv/bin/python scripts/benchmark_accuracy.py --task ratings     # four star-rating buckets, macro-F1

Systems:

* config systems, each run as ``python -m sentiment train -c CONFIG --set ... -o DIR -q`` in a subprocess with
  ``SENTIMENT_HOME`` set to a fresh empty directory, so that no Word2Vec vectors or prepared data are reused;
  their seconds are the wall time of the whole process (interpreter start and imports, reading, Word2Vec,
  training, evaluating, writing the model directory with its report and plots). Accuracy and F1 come from
  the model directory's metrics.json ("test"), the detail column's val acc from its "validation" record.
  tutorial (configs/tutorial.yaml, Word2Vec on its training text only, as the tutorial does), plain
  (configs/imdb_plain.yaml: frozen averaged Word2Vec into the SimpleMLP), fast (configs/imdb_fast.yaml: the
  wide and deep recipe cut for time), best (configs/imdb.yaml); default (configs/default.yaml, tuned for the
  5,000-row stand-in) runs only when named, and --config NAME=YAML adds or replaces one.
* peers, run in this process and timed from reading the two files to the predictions (their library imports,
  about a second, are not counted):
  tfidf_lr: TF-IDF over word uni+bigrams (sublinear tf, min_df 2) + logistic regression (C=4);
  nbsvm2 / nbsvm3: NBSVM-style logistic regression (Wang & Manning 2012) on binarised word 1-2 / 1-3-grams
  (all of them, no pruning) scaled by the naive-Bayes log-count ratio, liblinear dual, C=0.1 fixed (the value
  usual for this recipe, not tuned here);
  fasttext: fastText supervised (lr 0.5, 5 epochs, word bigrams, dim 10, one thread so that it repeats) on
  lower-cased text with markup stripped and punctuation split off as fastText's own examples do; it runs
  only when ``import fasttext`` works (``pip install fasttext-numpy2``, not a project dependency), else the
  row is skipped with a note.
  All peers strip the reviews' HTML markup.

After the table, the frontier: for each system the systems that beat it on both accuracy and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_TRAIN = SHARED / "imdb" / "train.csv.gz"
DEFAULT_UNLABELED = SHARED / "imdb" / "unlabeled.csv.gz"
CONFIGS = {
    "tutorial": ROOT / "configs" / "tutorial.yaml",
    "plain": ROOT / "configs" / "imdb_plain.yaml",
    "fast": ROOT / "configs" / "imdb_fast.yaml",
    "best": ROOT / "configs" / "imdb.yaml",
    "default": ROOT / "configs" / "default.yaml",
}
PEERS = ("tfidf_lr", "nbsvm2", "nbsvm3", "fasttext")
SYSTEMS = (*CONFIGS, *PEERS)
DEFAULT_SYSTEMS = ("tutorial", "plain", "fast", "best", "tfidf_lr", "nbsvm2", "nbsvm3", "fasttext")
TEXT_COLUMNS = ("review", "cleaned_review", "text")
SPLITS = ("movie", "random", "tail")
GROUP_COLUMN = "movie"
TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"  # the linear peers' words: letters and digits, inner apostrophes kept
NBSVM_C = 0.1


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
    split: str = "random"  # movie, random or tail (with --test: how the configs' validation split is made)
    group_column: str | None = None  # movie when the split is by movie: the configs' validation split too
    description: str = ""  # the split, for the first log line


def _pick_text_column(columns: Sequence[str], wanted: str | None) -> str:
    if wanted:
        return wanted
    for name in TEXT_COLUMNS:
        if name in columns:
            return name
    raise SystemExit(f"no text column among {list(columns)}; pass --text-column")


def resolve_split(args: argparse.Namespace, columns: Sequence[str]) -> str:
    """--split, or --tail, or the default: movie when the training file has a movie column, else random."""
    if args.tail:
        if args.split not in (None, "tail"):
            raise SystemExit(f"--tail is --split tail; it contradicts --split {args.split}")
        return "tail"
    if args.split is None:
        return "movie" if GROUP_COLUMN in columns else "random"
    if args.split == "movie" and GROUP_COLUMN not in columns:
        raise SystemExit(f"--split movie: {args.train} has no '{GROUP_COLUMN}' column; use --split random")
    return args.split


def _movie_groups(frame: Any) -> list[str]:
    """Each row's movie; a row without one is a group of its own."""
    import pandas as pd

    return [str(m) if pd.notna(m) else f"\0row{i}" for i, m in enumerate(frame[GROUP_COLUMN])]


def prepare_files(args: argparse.Namespace, workdir: Path) -> Files:
    """The run's train and test files: the given pair, or a hold-out of --train (by movie, seeded and
    stratified, or the last rows in file order: --split)."""
    from sentiment.data import read_table

    train = Path(args.train)
    frame = read_table(train)
    text_column = _pick_text_column(list(frame.columns), args.text_column)
    split = resolve_split(args, list(frame.columns))
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
        split,
        GROUP_COLUMN if split == "movie" else None,
    )
    if args.test:
        grouped = "by movie" if files.group_column else "not grouped"
        files.description = f"none, --test given (the configs' validation splits {grouped})"
        return files
    if split == "tail":
        n_held = round(len(frame) * args.holdout)
        keep, held = frame.iloc[: len(frame) - n_held], frame.iloc[len(frame) - n_held :]
        how = "the last rows in file order"
    elif split == "movie":
        from sklearn.model_selection import GroupShuffleSplit

        groups = _movie_groups(frame)
        splitter = GroupShuffleSplit(n_splits=1, test_size=args.holdout, random_state=args.seed)
        keep_idx, held_idx = next(splitter.split(frame, groups=groups))
        keep, held = frame.iloc[sorted(keep_idx)], frame.iloc[sorted(held_idx)]
        n_kept, n_held = len({groups[i] for i in keep_idx}), len({groups[i] for i in held_idx})
        how = f"GroupShuffleSplit seed {args.seed}, {n_kept} / {n_held} movies, none on both sides"
    else:
        from sklearn.model_selection import train_test_split

        keep, held = train_test_split(
            frame,
            test_size=args.holdout,
            stratify=frame[args.label_column],
            random_state=args.seed,
            shuffle=True,
        )
        how = f"stratified, seed {args.seed}"
    files.description = f"{split} ({len(keep)} training rows / {len(held)} held out; {how})"
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
    if files.group_column:
        data.append(f"data.group_column={files.group_column}")
    return [*data, *extra]


def train_command(
    config_path: Path, overrides: Sequence[str], output: Path, verbose: bool = False
) -> list[str]:
    """The CLI command a config system runs: ``python -m sentiment train -c CONFIG --set ... -o DIR [-q]``."""
    command = [sys.executable, "-m", "sentiment", "train", "-c", str(config_path)]
    command += [arg for item in overrides for arg in ("--set", item)]
    command += ["-o", str(output)]
    return command if verbose else [*command, "-q"]


def run_config(
    name: str, config_path: Path, files: Files, extra: Sequence[str], workdir: Path, verbose: bool = False
) -> Row:
    """One config, cold: the real CLI in a fresh process with a fresh, empty SENTIMENT_HOME (no cached
    Word2Vec vectors or prepared data), timed around the whole process."""
    overrides = _overrides(files, extra)
    if name == "tutorial":
        # The tutorial's Word2Vec sees only its training text, as in the tutorial.
        overrides = [o for o in overrides if not o.startswith("data.unlabeled_path=")]
        overrides.append("data.unlabeled_path=null")
    output = workdir / name
    command = train_command(config_path, overrides, output, verbose)
    with tempfile.TemporaryDirectory(prefix=f"sentiment-home-{name}-") as home:
        env = {**os.environ, "SENTIMENT_HOME": home}
        start = time.perf_counter()
        done = subprocess.run(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.PIPE,  # --verbose: the CLI's log lines pass through
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stderr or "").strip().splitlines()[-20:]) or "(its stderr is above)"
        raise SystemExit(f"{name}: `sentiment train` exited with status {done.returncode}:\n{tail}")
    metrics = json.loads((output / "metrics.json").read_text(encoding="utf-8"))
    test, validation = metrics["test"], metrics.get("validation")
    meta = json.loads((output / "meta.json").read_text(encoding="utf-8"))
    notes = [f"val acc {validation['accuracy']:.4f}"] if validation else []
    hits = [kind for kind in ("word2vec", "prepared") if meta.get(f"{kind}_cache_hit")]
    notes.append(f"CACHE HIT ({', '.join(hits)}): not cold" if hits else "cold CLI")
    return Row(name, float(test["accuracy"]), float(test["f1"]), seconds, "; ".join(notes))


_TAG = re.compile(r"<[^>]*>")


def _read_pair(files: Files) -> tuple[list[str], Any, list[str], Any]:
    """Training texts and labels (True: positive), test texts and labels; markup stripped, empty rows gone."""
    from sentiment.data import read_table

    columns = [files.text_column, files.label_column]

    def read(path: Path) -> tuple[list[str], Any]:
        frame = read_table(path, columns).dropna()
        texts = [_TAG.sub(" ", t) for t in frame[files.text_column].astype(str)]
        labels = (frame[files.label_column].astype(str).str.strip() == files.positive_label).to_numpy()
        return texts, labels

    return (*read(files.train), *read(files.test))


def _scores(y: Any, pred: Any) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return float(accuracy_score(y, pred)), float(f1_score(y, pred))


def run_tfidf_lr(files: Files, seed: int, c: float = 4.0) -> Row:
    """The peer: TF-IDF over word uni+bigrams (sublinear tf) + logistic regression, markup stripped."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    train_texts, y_train, test_texts, y_test = _read_pair(files)
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, max_df=0.95, sublinear_tf=True, token_pattern=TOKEN_PATTERN
    )
    x_train = vectorizer.fit_transform(train_texts)
    clf = LogisticRegression(C=c, max_iter=2000, solver="liblinear", random_state=seed)
    clf.fit(x_train, y_train)
    pred = clf.predict(vectorizer.transform(test_texts))
    seconds = time.perf_counter() - start
    accuracy, f1 = _scores(y_test, pred)
    return Row("tfidf_lr", accuracy, f1, seconds, f"{x_train.shape[1]} features, C={c:g}")


def nb_log_count_ratio(x: Any, y: Any) -> Any:
    """Wang & Manning's r = log((p / |p|_1) / (q / |q|_1)), p = 1 + the positive rows' sum of the binarised
    features, q = 1 + the negative rows'."""
    import numpy as np

    y = np.asarray(y, dtype=bool)
    p = 1.0 + np.asarray(x[y].sum(axis=0), dtype=np.float64).ravel()
    q = 1.0 + np.asarray(x[~y].sum(axis=0), dtype=np.float64).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


def run_nbsvm(files: Files, seed: int, max_n: int, c: float = NBSVM_C) -> Row:
    """NBSVM-style peer (Wang & Manning 2012, as logistic regression): binarised word 1..max_n-grams scaled by
    the naive-Bayes log-count ratio, then L2 logistic regression (liblinear, dual)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    train_texts, y_train, test_texts, y_test = _read_pair(files)
    vectorizer = CountVectorizer(binary=True, ngram_range=(1, max_n), token_pattern=TOKEN_PATTERN)
    x_train = vectorizer.fit_transform(train_texts)
    scale = sp.diags(nb_log_count_ratio(x_train, y_train))
    clf = LogisticRegression(C=c, solver="liblinear", dual=True, max_iter=1000, random_state=seed)
    clf.fit(x_train @ scale, y_train)
    pred = clf.predict(vectorizer.transform(test_texts) @ scale)
    seconds = time.perf_counter() - start
    accuracy, f1 = _scores(y_test, pred)
    detail = f"1-{max_n}-grams, {x_train.shape[1]} features, C={c:g} fixed (not tuned)"
    return Row(f"nbsvm{max_n}", accuracy, f1, seconds, detail)


def fasttext_available() -> bool:
    try:
        import fasttext  # noqa: F401
    except ImportError:
        return False
    return True


_FT_SPACED = re.compile(r"([.,!?()'])")
_FT_DROPPED = re.compile(r"[\";:]")


def fasttext_text(text: str) -> str:
    """One line as fastText's classification examples normalise it: lower-cased, markup gone, ``"`` ``;``
    ``:`` dropped, other punctuation split off as tokens."""
    text = _FT_DROPPED.sub(" ", _TAG.sub(" ", text).lower())
    return " ".join(_FT_SPACED.sub(r" \1 ", text).split())


FASTTEXT_SETTINGS = {"lr": 0.5, "epoch": 5, "wordNgrams": 2, "dim": 10, "minCount": 1, "thread": 1}


def run_fasttext(files: Files, seed: int) -> Row:
    """fastText supervised (Joulin et al. 2016's bigram setting) on the training file written in its
    ``__label__`` format to a temporary file."""
    import fasttext
    import numpy as np

    start = time.perf_counter()
    train_texts, y_train, test_texts, y_test = _read_pair(files)
    with tempfile.TemporaryDirectory(prefix="sentiment-fasttext-") as tmp:
        path = Path(tmp) / "train.txt"
        with path.open("w", encoding="utf-8") as fh:
            for text, positive in zip(train_texts, y_train, strict=True):
                fh.write(f"__label__{'pos' if positive else 'neg'} {fasttext_text(text)}\n")
        model = fasttext.train_supervised(str(path), seed=seed, verbose=0, **FASTTEXT_SETTINGS)
    predicted, _ = model.predict([fasttext_text(t) for t in test_texts])
    pred = np.array([labels[0] == "__label__pos" for labels in predicted])
    seconds = time.perf_counter() - start
    accuracy, f1 = _scores(y_test, pred)
    settings = ", ".join(f"{k} {v}" for k, v in FASTTEXT_SETTINGS.items())
    return Row("fasttext", accuracy, f1, seconds, settings)


def run_peer(name: str, files: Files, seed: int) -> Row:
    if name == "tfidf_lr":
        return run_tfidf_lr(files, seed)
    if name in ("nbsvm2", "nbsvm3"):
        return run_nbsvm(files, seed, int(name[-1]))
    if name == "fasttext":
        return run_fasttext(files, seed)
    raise ValueError(f"unknown peer {name}")


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


def dominated_by(rows: Sequence[Row]) -> dict[str, list[str]]:
    """For each system, the systems that beat it on both counts: higher accuracy and fewer seconds (a tie
    on either is no win). An empty list: the system is on the accuracy / time frontier."""
    return {
        r.system: [o.system for o in rows if o.accuracy > r.accuracy and o.seconds < r.seconds] for r in rows
    }


def format_frontier(rows: Sequence[Row]) -> str:
    beaten = dominated_by(rows)
    lines = ["frontier (beaten on both accuracy and seconds by):"]
    for r in rows:
        others = beaten[r.system]
        lines.append(
            f"  {r.system:<10} " + (f"dominated by: {', '.join(others)}" if others else "on the frontier")
        )
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
    parser.add_argument("--seed", type=int, default=42, help="seed of the hold-out split and the peers")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        help="the hold-out: movie (whole movies, GroupShuffleSplit; the default when --train has a movie "
        "column), random (seeded, stratified; the default otherwise) or tail (the last rows in file order)",
    )
    parser.add_argument("--tail", action="store_true", help="the same as --split tail (the tutorial's split)")
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
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="the CLI's log lines (stderr) instead of train -q"
    )
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
        log(
            f"split: {files.description}; train {files.train} / test {files.test} / "
            f"unlabelled {files.unlabeled}"
        )
        for name in systems:
            if name == "fasttext" and not fasttext_available():
                log("note: fasttext skipped: `import fasttext` fails (pip install fasttext-numpy2 to run it)")
                continue
            if name in PEERS and name not in configs:
                row = run_peer(name, files, args.seed)
            else:
                row = run_config(name, configs[name], files, args.set, workdir, args.verbose)
            rows.append(row)
            log(
                f"{row.system}: accuracy {row.accuracy:.4f}  F1 {row.f1:.4f}  {row.seconds:.1f} s  "
                f"{row.detail}"
            )
    log(format_table(rows))
    log(format_frontier(rows))
    if args.json:
        beaten = dominated_by(rows)
        records = [{**asdict(r), "dominated_by": beaten[r.system], "split": files.description} for r in rows]
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
