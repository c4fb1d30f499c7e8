"""The ``sentiment`` command: a thin Typer layer over the library.

Heavy libraries (torch, gensim, pandas, scikit-learn) are imported inside the commands that use them, so
``sentiment --help`` and ``sentiment predict`` start fast.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from sentiment import __version__
from sentiment.errors import RankFailure, SentimentError


def _handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input -> ``error: ...`` on stderr and exit 2; an unexpected error -> exit 1; no traceback unless
    ``--debug`` (or SENTIMENT_DEBUG=1). Inside the command, so every caller (console script, ``python -m``,
    CliRunner in the tests) gets the same behaviour."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug")) or os.environ.get("SENTIMENT_DEBUG") == "1"
        try:
            return command(*args, **kwargs)
        except SentimentError as exc:
            if debug:
                raise
            typer.echo(f"error: {_one_line(str(exc))}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, BrokenPipeError):
            raise
        except RankFailure as exc:  # distributed training: another rank is gone
            if debug:
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            if debug:
                raise
            if isinstance(exc, OSError) and exc.errno in _ENVIRONMENT_ERRNOS:
                # the machine, not the program: a full disk, a read-only file system, a quota
                where = f": {exc.filename}" if exc.filename else ""
                typer.echo(f"error: {_one_line(f'{exc.strerror or exc}{where}')}", err=True)
                raise typer.Exit(2) from None
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            typer.echo(
                f"error: unexpected {type(exc).__name__}: {first} (rerun with --debug for the traceback)",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper


_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def _one_line(message: str) -> str:
    """A message on one line whatever it quotes: a path may hold a newline."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


app = typer.Typer(
    name="sentiment",
    help=(
        "Train, evaluate and serve text-sentiment classifiers (Word2Vec averaging + a PyTorch MLP).\n\n"
        "Start with: sentiment train --data reviews.csv (or --config default); then sentiment eval and "
        'sentiment predict "a gripping film". Add --help to any command for its options.'
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Inspect and check config files.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    str,
    typer.Option(
        "--config",
        "-c",
        metavar="CONFIG",
        help="A YAML config file, or a shipped config by name (sentiment config list).",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key: --set training.epochs=10 (repeatable).",
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model", "-m", metavar="DIR", help="Model directory (default: the one the last `train` wrote)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only results and warnings: no bars, progress lines or timings.")
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help="More detail: per-epoch lines, stage times, INFO logs."),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sentiment {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Train, evaluate and serve text-sentiment classifiers (--help shows the app's help text)."""


def _setup_logging(quiet: bool, verbose: bool, handler: logging.Handler) -> None:
    """Library log lines on stderr as ``warning: ...`` through ``handler``; INFO too with --verbose."""
    logger = logging.getLogger("sentiment")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet or not verbose else logging.INFO)
    logger.propagate = False


@app.command()
@_handle_errors
def train(
    config: ConfigOpt = "default",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            metavar="FILE",
            help="Train on this labelled file (CSV/TSV/Parquet/JSON lines): columns and positive label are "
            "guessed when plain, rows split shuffled and stratified.",
        ),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", metavar="NAME", help="With --data: the text column.")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option("--label-column", metavar="NAME", help="With --data: the label column.")
    ] = None,
    positive_label: Annotated[
        str | None,
        typer.Option(
            "--positive-label", metavar="VALUE", help="With --data: the positive class's label value."
        ),
    ] = None,
    set_: SetOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Model directory to write (default: output_dir/<config name>).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the run Ctrl-C (or SIGTERM) stopped, from its checkpoint."),
    ] = False,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            metavar="N",
            help="Train on N processes of this machine with DistributedDataParallel (launches torchrun "
            "--standalone --nproc_per_node=N; docs/distributed.md).",
        ),
    ] = 1,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (model directory, metrics) on stdout.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Download/read the data, train Word2Vec and the MLP, evaluate on the test split, save the model.

    `sentiment train --data reviews.csv` trains on your own file with the default recipe, no config needed.
    Ctrl-C stops after the current batch and keeps a checkpoint; the command it prints continues the run.
    """
    from sentiment import distributed
    from sentiment.checkpoint import terminate_as_interrupt
    from sentiment.config import load_config
    from sentiment.errors import TrainingInterrupted
    from sentiment.pipeline import train as run_train
    from sentiment.progress import Reporter

    reporter = distributed.rank_reporter(Reporter(quiet=quiet, verbose=verbose))  # torchrun ranks > 0: silent
    # log lines go through the reporter's console so that they print above a live bar, not through it
    _setup_logging(quiet, verbose, reporter.logging_handler())
    columns = {
        "--text-column": text_column,
        "--label-column": label_column,
        "--positive-label": positive_label,
    }
    given = [flag for flag, value in columns.items() if value is not None]
    if data is None and given:
        raise SentimentError(f"{given[0]} goes with --data FILE (or set it in the config)")
    values = {}
    if data is not None:
        planned = load_config(config, set_ or []).data  # the task and separator the --set options ask for
        sets = planned.task == "multilabel" or planned.label_separator is not None
        values = _data_values(data, text_column, label_column, positive_label, reporter, sets)
    cfg = load_config(config, set_ or [], values)
    name = data.name.split(".")[0] if data is not None else Path(str(config)).name.removesuffix(".yaml")
    args = ["--config", str(config)]
    args += ["--data", str(data)] if data is not None else []
    args += [a for flag in given for a in (flag, str(columns[flag]))]
    args += [a for pair in set_ or [] for a in ("--set", pair)]
    args += ["--output", str(output)] if output is not None else []
    if nproc > 1 and not distributed.launched():  # the same command on N ranks, through torchrun
        flags = [f for f, on in (("--json", json_), ("--quiet", quiet), ("--verbose", verbose)) if on]
        flags += ["--debug"] * debug + ["--resume"] * resume
        raise typer.Exit(distributed.launch(nproc, ["train", *args, *flags]))
    try:
        with terminate_as_interrupt():  # SIGTERM outside the epochs: clean up like Ctrl-C, keep the old model
            result = run_train(cfg, output, config_name=name, reporter=reporter, resume=resume)
    except TrainingInterrupted as exc:
        if distributed.is_main():  # several ranks: rank 0 says it, once
            typer.echo(f"{exc}; resume with the next line", err=True)
            typer.echo(shlex.join(distributed.command_line(["train", *args, "--resume"])), err=True)
        raise typer.Exit(128 + exc.signum) from None
    if not distributed.is_main():
        return  # rank 0 prints the results
    if json_:
        metrics = {"test": result.metrics, "validation": result.val_metrics}
        typer.echo(json.dumps({"model": str(result.model_dir.resolve()), **metrics}))
        return
    reporter.timing_table()
    from sentiment.report import print_metrics, print_report_location

    names = result.labels
    labels = (
        {"negative": names[0], "positive": names[1]} if result.metrics.get("threshold") is not None else names
    )
    print_metrics({**result.metrics, "labels": labels}, title="Test metrics", validation=result.val_metrics)
    print_report_location(result.model_dir)


def _data_values(
    data: Path,
    text_column: str | None,
    label_column: str | None,
    positive_label: str | None,
    reporter: Any,
    sets: bool = False,
) -> dict[str, Any]:
    """Config values for ``train --data FILE``: the file, its columns and positive label (guessed where not
    given), no Kaggle source, and a shuffled stratified split (a user's file may be sorted by label)."""
    from sentiment.data import guess_data_settings

    guess = guess_data_settings(data, text_column, label_column, positive_label, sets)
    if guess.note:
        reporter.log(guess.note)
    values = {
        "data.path": str(data),
        "data.kaggle_handle": None,
        "data.kaggle_file": None,
        "data.text_column": guess.text_column,
        "data.label_column": guess.label_column,
        "data.shuffle": True,
    }
    if guess.positive_label is not None:
        values["data.positive_label"] = guess.positive_label
    return values


@app.command()
@_handle_errors
def tune(
    config: ConfigOpt = "default",
    space: Annotated[
        Path | None,
        typer.Option(
            "--space",
            metavar="SPACE.yaml",
            help="Search space: YAML of dotted config keys, each {low, high[, log, step]} or "
            "{choices: [...]} (default: the shipped configs/space.yaml).",
        ),
    ] = None,
    set_: SetOpt = None,
    trials: Annotated[
        int,
        typer.Option(
            "--trials", "-n", metavar="N", min=1, help="Trials in the study (all processes together)."
        ),
    ] = 20,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="Start no trial after this long; running trials finish and the results are written.",
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", metavar="J", min=1, help="Worker processes on this machine, sharing the study."
        ),
    ] = 1,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            metavar="URL",
            help="Optuna storage: a database URL (sqlite:///tune.db, postgresql://user@host/db) or a journal "
            "file (default: OUTPUT/study.log). Processes given the same URL and --study share the study.",
        ),
    ] = None,
    study: Annotated[
        str, typer.Option("--study", metavar="NAME", help="Study name in the storage.")
    ] = "tune",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="DIR",
            help="Results directory (default: output_dir/tune-<config name>).",
        ),
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            "--metric", metavar="NAME", help="Validation metric to optimise: accuracy, f1, macro_f1 or loss."
        ),
    ] = "accuracy",
    seed: Annotated[
        int | None, typer.Option("--seed", metavar="SEED", help="Sampler seed (default: the config's seed).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the study a stopped or killed tune left in OUTPUT.")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune/--no-prune", help="Stop trials whose per-epoch validation figure trails."),
    ] = True,
    json_: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (best trial, counts, files) on stdout.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Search settings with Optuna for the best validation figure; write best.yaml, trials.csv and plots.

    Each trial trains CONFIG with the --set options and the trial's values (no refit, nothing saved), reusing
    the prepared-data and Word2Vec caches. `sentiment train --config OUTPUT/best.yaml` trains the winner.
    """
    from sentiment.checkpoint import terminate_as_interrupt
    from sentiment.config import SHIPPED_SPACE
    from sentiment.progress import Reporter
    from sentiment.tune import TrialTable, TuneSettings, make_plan, trial_notice
    from sentiment.tune import tune as run_tune

    reporter = Reporter(quiet=quiet, verbose=verbose)
    _setup_logging(quiet, verbose, reporter.logging_handler())
    settings = TuneSettings(
        config=config,
        space=space if space is not None else SHIPPED_SPACE,
        sets=list(set_ or []),
        output=output,
        trials=trials,
        timeout=timeout,
        jobs=jobs,
        storage=storage,
        study=study,
        metric=metric,
        seed=seed,
        resume=resume,
        prune=prune,
        verbose=verbose,
    )
    plan = make_plan(settings)  # bad input is exit 2 before anything starts
    # the table is the results on stdout; with --json stdout is the JSON alone, so the rows go to stderr
    table = TrialTable(plan.space, metric, plan.direction, sys.stderr if json_ else None)
    with terminate_as_interrupt():
        result = run_tune(settings, reporter=reporter, on_trial=table.add, announce=trial_notice(reporter))
    if json_:
        typer.echo(json.dumps(result.to_dict()))
    else:
        _print_tune_summary(result)
    for note in result.notes:
        reporter.log(f"note: {note}")
    if result.interrupted:
        command = ["sentiment", "tune", "--config", str(config)]
        command += ["--space", str(space)] if space is not None else []
        command += [a for pair in set_ or [] for a in ("--set", pair)]
        command += ["--trials", str(trials), "--output", str(result.output)]
        command += ["--storage", storage, "--study", study] if storage is not None else []
        command += ["--metric", metric] if metric != "accuracy" else []
        command += ["--jobs", str(jobs)] if jobs != 1 else []
        command += ["--seed", str(seed)] if seed is not None else []
        command += [] if prune else ["--no-prune"]
        typer.echo("tune interrupted; results so far are written; resume with the next line", err=True)
        typer.echo(shlex.join([*command, "--resume"]), err=True)
        raise typer.Exit(130)


def _print_tune_summary(result: Any) -> None:
    counts = result.counts
    total = sum(counts.values())
    done = (
        f"{total} trials: {counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed"
    )
    if result.best is None:
        typer.echo(f"{done}; none completed, so no best settings")
    else:
        best = result.best
        typer.echo(f"best: trial {best['number']}, validation {result.metric} {best['value']:.4f} ({done})")
        width = max(len(k) for k in best["params"]) if best["params"] else 0
        for key, value in best["params"].items():
            shown = f"{value:.4g}" if isinstance(value, float) else json.dumps(value)
            typer.echo(f"  {key:<{width}}  {shown}")
    typer.echo(f"results in {result.output}: {', '.join(f.name for f in result.files)}")
    if result.best is not None:
        typer.echo(f"train the best settings: sentiment train --config {result.output / 'best.yaml'}")


@app.command("eval")
@_handle_errors
def eval_(
    model: ModelOpt = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            "-d",
            metavar="FILE",
            help="Evaluate on this labelled file instead of the saved test split.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", metavar="P", min=0.0, max=1.0, help="Decision threshold (default: the model's)."
        ),
    ] = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Accuracy, precision, recall and F1 of a saved model: tables for people, one JSON object with --json."""
    from sentiment.evaluate import evaluate_model
    from sentiment.paths import resolve_model_dir
    from sentiment.progress import Reporter

    # Warnings (e.g. dropped rows of --data) go to stderr, formatted as in `train`; stdout stays results only.
    _setup_logging(quiet=True, verbose=False, handler=Reporter(quiet=True).logging_handler())
    metrics = evaluate_model(resolve_model_dir(model), data, threshold)
    if json_:
        typer.echo(json.dumps(metrics))
        return
    from sentiment.report import print_metrics

    print_metrics(metrics, title=f"Evaluation on {metrics['source']}", per_class=True)


def _argv_text(text: str) -> str:
    """A command-line text as the user typed it. Python decodes argv with the locale's encoding, keeping bytes
    it cannot decode as lone surrogates: back to those bytes, then read as UTF-8 (a C locale, PYTHONUTF8=0),
    with U+FFFD for bytes that are not UTF-8 either, which output could not hold."""
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def _decode(raw: bytes) -> str:
    """A text file's bytes as text: UTF-8 (an editor's byte-order mark dropped), or UTF-16 / UTF-32 when the
    file starts with their byte-order mark (Windows Notepad's "Unicode", Excel's "Unicode Text"); read as
    UTF-8 those became one garbled text per byte pair, and a line more than the file holds."""
    from sentiment.data import BYTE_ORDER_MARKS

    for bom, encoding in BYTE_ORDER_MARKS:
        if raw.startswith(bom):
            return raw.decode(encoding, errors="replace")  # the codec drops the byte-order mark
    return raw.decode("utf-8", errors="replace").removeprefix("\ufeff")


def _read_lines(file: Path) -> list[str]:
    try:
        text = _decode(_read_bytes(file))
    except MemoryError:  # under a memory limit (ulimit -v); without one the kernel's OOM killer ends it
        where = "standard input" if str(file) == "-" else str(file)
        raise SentimentError(
            f"{where} does not fit in memory (is it an endless stream?); give a smaller file"
        ) from None
    # A line ends at LF or CRLF, as users count lines; str.splitlines would also split at form feeds,
    # vertical tabs and U+2028 inside a text, and the outputs would no longer line up with the inputs. A file
    # without any LF but with CRs has classic Mac line ends: there, CR ends a line.
    if "\n" not in text and "\r" in text.rstrip("\r"):
        text = text.replace("\r", "\n")
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    # A blank line inside the file keeps its place (its output is flagged: no known word), so output line i is
    # input line i; blank lines at the very end are the editor's, not texts.
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _read_bytes(file: Path) -> bytes:
    if str(file) == "-":
        return sys.stdin.buffer.read()
    if not file.exists():
        raise SentimentError(f"input file not found: {file}")
    if file.is_dir():
        raise SentimentError(f"--file {file} is a directory; give a file with one text per line")
    raw = file.read_bytes()  # a pipe too: <(command), /dev/stdin, a named FIFO
    if file.name.lower().endswith(".gz"):
        import gzip
        import zlib

        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise SentimentError(f"{file}: not a readable gzip file ({exc})") from None
    return raw


TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".json")


@app.command()
@_handle_errors
def predict(
    # hidden from the argument list (which would print its Python type); the usage line and help say it all
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to classify.", show_default=False, metavar="TEXT", hidden=True),
    ] = None,
    model: ModelOpt = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            metavar="FILE",
            help="One text per line ('-' reads stdin), or a CSV/TSV/Parquet/JSONL file with a text column.",
        ),
    ] = None,
    text_column: Annotated[
        str | None,
        typer.Option(
            "--text-column", metavar="NAME", help="Text column of a table --file (default: the model's)."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write a CSV (JSON lines for a .jsonl name): input columns (or text) + label, probability.",
        ),
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k", metavar="K", min=1, help="Also show the K most probable labels of each text."
        ),
    ] = None,
    explain_: Annotated[
        bool,
        typer.Option(
            "--explain", help="Also show which words pushed each prediction (as `sentiment explain`)."
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="ENGINE",
            help="With many --file shards: local (this process) or dask (a Dask cluster).",
        ),
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", metavar="ADDRESS", help="--engine dask: the scheduler (default: a local cluster)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", metavar="N", min=1, help="--engine dask: local cluster workers (default: cores)."
        ),
    ] = None,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Label and probability of the positive class for each TEXT (or each text of --file).

    A table for texts given as arguments on a terminal; otherwise (a --file, or output to a pipe or file) one
    line per text: label, probability and the text on one line, tab-separated. --json writes JSON lines
    (with a table file's other columns), --output a CSV (JSON lines for a .jsonl name). `-` alone reads
    standard input, as --file - does.
    """
    from sentiment.paths import resolve_model_dir
    from sentiment.predictor import Predictor

    if texts == ["-"] and file is None:  # `cmd | sentiment predict -`: standard input, as --file -
        texts, file = None, Path("-")
    if texts and file is not None:
        raise SentimentError("give texts as arguments or --file, not both")
    if file is not None and str(file) != "-":
        from sentiment.shards import is_shard_pattern

        if engine != "local" or is_shard_pattern(file):
            _predict_shards(model, file, output, engine, scheduler, workers, text_column)
            return
    if output is not None:
        from sentiment.atomic import check_writable

        if output.is_dir():
            raise SentimentError(
                f"--output {output} is a directory; give a file name (e.g. {output}/scored.csv)"
            )
        if file is not None and str(file) != "-" and _same_file(file, output):
            raise SentimentError(
                f"--output {output} is the --file itself: the predictions would replace the texts; give "
                "another file name"
            )
        _output_format(output)
        check_writable(output, "--output")
    model_dir = resolve_model_dir(model)
    predictor = Predictor.load(model_dir)
    table = None
    is_table = file is not None and file.name.lower().removesuffix(".gz").endswith(TABLE_SUFFIXES)
    if file is not None and str(file) != "-" and is_table:
        from sentiment.report import read_text_table

        table, inputs = read_text_table(file, text_column or predictor.text_column)
    elif file is not None:
        inputs = _read_lines(file)
        if not inputs:
            raise SentimentError(f"no text to classify in {'standard input' if str(file) == '-' else file}")
    else:
        inputs = list(texts or [])
        if not inputs:
            raise SentimentError(
                'no text given: sentiment predict "some text" (or --file FILE; --file - reads stdin)'
            )
        if any(not t.strip() for t in inputs):
            raise SentimentError("an empty text cannot be classified")
        inputs = [_argv_text(t) for t in inputs]
    explanations = None
    if explain_:
        from sentiment.explain import explain

        explanations = explain(predictor, inputs)
        predictions = [e.prediction for e in explanations]
    else:
        predictions = predictor.predict(inputs, workers=0)  # large inputs use every core
    from sentiment import report

    if output is not None and _output_format(output) == "jsonl":
        from sentiment.atomic import atomic_file

        with atomic_file(output) as fh:
            report.write_predictions_json(fh, explanations or predictions, table, top_k)
        typer.echo(f"{len(predictions)} predictions written to {output}", err=True)
    elif output is not None:
        report.write_predictions_csv(output, predictions, table, explanations)
        typer.echo(f"{len(predictions)} predictions written to {output}", err=True)
    elif json_:
        report.write_predictions_json(sys.stdout, explanations or predictions, table, top_k)
    elif file is None and sys.stdout.isatty():
        if explanations is not None:
            report.print_explanations(explanations, top=5)
        else:
            report.print_predictions(predictions, top_k)  # a few texts, a person reading: the table
    else:  # one line per text, at batch speed
        report.write_prediction_lines(sys.stdout, predictions, top_k, explanations)
        unknown = sum(p.no_known_words for p in predictions)
        if unknown:
            typer.echo(
                f"{unknown} text(s) marked *: no word of the text is in the model's vocabulary", err=True
            )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


JSONL_SUFFIXES = (".jsonl", ".ndjson")
# names that promise a format --output does not write: a CSV in them would be a broken file
OTHER_FORMATS = (".json", ".tsv", ".parquet", ".gz", ".zip", ".xlsx")


def _output_format(output: Path) -> str:
    """``jsonl`` (the lines --json prints) for a .jsonl / .ndjson name, else ``csv``."""
    name = output.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(OTHER_FORMATS):
        raise SentimentError(
            f"--output {output}: predictions are written as CSV or JSON lines; name the file .csv or .jsonl"
        )
    return "csv"


def _predict_shards(
    model: Path | None,
    file: Path,
    output: Path | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    text_column: str | None,
) -> None:
    """``predict --file 'shards/*.parquet' --output out/ [--engine dask]``: one CSV per input file."""
    from sentiment.paths import resolve_model_dir
    from sentiment.shards import predict_shards

    if output is None:
        if Path(file).is_dir():
            raise SentimentError(
                f"--file {file} is a directory: give --output DIR for one CSV per data file in it, or a file "
                "with one text per line"
            )
        many = f"--file {file} names many files" if engine == "local" else f"--engine {engine}"
        raise SentimentError(f"{many}: give --output DIR for one CSV per file")
    result = predict_shards(
        resolve_model_dir(model),
        str(file),
        output,
        engine=engine,
        scheduler=scheduler,
        workers=workers,
        text_column=text_column,
    )
    typer.echo(
        f"{result.texts} predictions from {result.shards} file(s) written to {output}/ in "
        f"{result.seconds:.1f} s ({result.texts_per_second:,.0f} texts/s, engine {engine})",
        err=True,
    )


@app.command()
@_handle_errors
def explain(
    texts: Annotated[
        list[str] | None,
        typer.Argument(help="Texts to explain.", show_default=False, metavar="TEXT", hidden=True),
    ] = None,
    model: ModelOpt = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", metavar="FILE", help="One text per line ('-' reads stdin)."),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", metavar="LABEL", help="Explain this label (default: the predicted one)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", metavar="N", min=1, help="How many of the strongest words to list.")
    ] = 10,
    top_words_: Annotated[
        bool,
        typer.Option(
            "--top-words",
            help="Instead of texts: the words the model leans on most for each label, over its test split.",
        ),
    ] = False,
    min_count: Annotated[
        int,
        typer.Option(
            "--min-count", metavar="N", min=1, help="With --top-words: only words seen N times or more."
        ),
    ] = 20,
    json_: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Which words pushed the prediction for each TEXT, and by how much.

    A word's weight is the label's log-odds with the text minus its log-odds without that word: the model is
    re-run with the word left out (occlusion), so the weights are exact for this model, not an approximation.
    Green (positive weight) pushed toward the label, red away from it; +0.69 doubled the odds.
    """
    from sentiment import explain as explaining
    from sentiment import report
    from sentiment.paths import resolve_model_dir
    from sentiment.predictor import Predictor

    predictor = Predictor.load(resolve_model_dir(model))
    if top_words_:
        if texts or file is not None:
            raise SentimentError("--top-words reads the model's test split: give no texts or --file")
        from sentiment.modeldir import read_test_rows

        sample, _ = read_test_rows(predictor.model_dir)
        words = explaining.top_words(
            predictor, sample[: explaining.TOP_WORDS_TEXTS], n=top, min_count=min_count
        )
        if json_:
            rows = {
                name: [{"token": w, "weight": round(wt, 6), "count": k} for w, wt, k in ranked]
                for name, ranked in words.items()
            }
            ascii_only = not report.writes_utf8(sys.stdout)
            typer.echo(json.dumps({"method": explaining.METHOD, "labels": rows}, ensure_ascii=ascii_only))
        else:
            report.print_top_words(words)
        return
    if texts == ["-"] and file is None:  # standard input, as --file -
        texts, file = None, Path("-")
    if texts and file is not None:
        raise SentimentError("give texts as arguments or --file, not both")
    inputs = _read_lines(file) if file is not None else list(texts or [])
    if not inputs:
        raise SentimentError(
            'no text given: sentiment explain "some text" (or --file FILE; --file - reads stdin)'
        )
    if file is None and any(not t.strip() for t in inputs):  # a file's blank lines keep their place
        raise SentimentError("an empty text cannot be explained")
    inputs = [_argv_text(t) for t in inputs]
    explanations = explaining.explain(predictor, inputs, label)
    if json_:
        report.write_predictions_json(sys.stdout, explanations, None)
    else:
        report.print_explanations(explanations, top)


@app.command()
@_handle_errors
def serve(
    model: ModelOpt = None,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", metavar="PORT", min=0, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", "-w", metavar="N", min=1, help="Server processes (one model each).")
    ] = 1,
    max_texts: Annotated[
        int, typer.Option("--max-texts", metavar="N", min=1, help="Most texts in one request (else 413).")
    ] = 1000,
    max_bytes: Annotated[
        int,
        typer.Option("--max-bytes", metavar="BYTES", min=1, help="Largest request body (else 413)."),
    ] = 1_000_000,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            metavar="N",
            min=0,
            help="Prediction calls at once in each process (0: one per core).",
        ),
    ] = 0,
    debug: DebugOpt = False,
) -> None:
    """Serve the model over HTTP: POST /predict and /explain, GET /health and /model, a page at /.

    Binds to 127.0.0.1 unless --host says otherwise. API docs at /docs. Ctrl-C or SIGTERM finish the
    requests in flight, then stop.
    """
    from sentiment.paths import resolve_model_dir

    try:
        from sentiment import serve as serving
    except ImportError as exc:
        raise SentimentError(
            f"serve needs FastAPI and uvicorn ({exc.name} is missing): pip install sentiment"
        ) from None
    from sentiment.parallel import cpu_count

    # one per core in every process: however the connections spread over the processes, each can use every
    # core (with --workers 2 on 2 cores the kernel once put all 4 batch clients on one process)
    threads = threads or cpu_count()
    settings = serving.ServeSettings(str(resolve_model_dir(model)), max_texts, max_bytes, threads)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: listening on {host}: reachable from other machines, with no authentication", err=True
        )

    def announce() -> None:  # after the model loaded: a broken one is the error line alone
        typer.echo(f"serving {settings.model_dir} on http://{host}:{port} (Ctrl-C stops)", err=True)

    serving.run(settings, host, port, workers, ready=announce)


@app.command()
@_handle_errors
def report(model: ModelOpt = None, debug: DebugOpt = False) -> None:
    """(Re)build report.html in a model directory: metrics, plots, history, config and the most confident
    mistakes on the test split with their explanations. `train` writes it too; this one is for a model
    trained by an older version, or to rebuild it."""
    from sentiment import html_report
    from sentiment.atomic import check_writable
    from sentiment.paths import resolve_model_dir

    model_dir = resolve_model_dir(model)
    check_writable(model_dir / html_report.REPORT, "the report")
    path = html_report.write(model_dir, workers=0)
    typer.echo(f"report written to {path.resolve()}")


ConfigArg = Annotated[
    str, typer.Argument(metavar="CONFIG", help="A YAML config file, or a shipped config's name.")
]


@config_app.command("list")
@_handle_errors
def config_list(debug: DebugOpt = False) -> None:
    """The configs shipped with sentiment, usable by name: --config NAME."""
    from sentiment.config import config_summary, shipped_configs

    shipped = shipped_configs()
    width = max(map(len, shipped))
    for name, path in shipped.items():
        typer.echo(f"{name:<{width}}  {config_summary(path)}")


@config_app.command("show")
@_handle_errors
def config_show(config: ConfigArg, set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Print the fully resolved config (defaults filled in, overrides applied) as YAML.

    `sentiment config show default > my.yaml` starts a config of your own.
    """
    from sentiment.config import load_config

    typer.echo(load_config(config, set_ or []).to_yaml(), nl=False)


@config_app.command("validate")
@_handle_errors
def config_validate(config: ConfigArg, set_: SetOpt = None, debug: DebugOpt = False) -> None:
    """Check a config without training (settings, its data files, the device and where the model and the
    caches go): what `train` would refuse before reading data; exit 0 when it is valid."""
    from sentiment.config import check_compatible, check_files, load_config
    from sentiment.pipeline import output_path
    from sentiment.runtime import resolve_device

    cfg = load_config(config, set_ or [])
    check_compatible(cfg)
    check_files(cfg)
    output_path(cfg, None, Path(str(config)).name.removesuffix(".yaml"))  # as `train` names the directory
    resolve_device(cfg.device)
    typer.echo(f"{config}: valid")


def main() -> NoReturn:
    """Console entry point (``sentiment``) and ``python -m sentiment``."""
    # OpenMP threads that sleep when idle instead of spinning: with another busy process on a 2-core machine,
    # fine-tuning took 2.2x as long with spinning threads, 1.07x with sleeping ones, for 14 % more on an idle
    # machine (scripts/benchmark_threads.py). Read once, when torch loads its OpenMP: set before any import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from sentiment.report import writes_utf8

    # A standard stream closed by the caller (`<&-`, `>&-`) is None in Python: read as empty, written to
    # nowhere, as print() does; every use of it was an AttributeError, and a traceback at exit.
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115 (open till exit)
    for stream in (sys.stdout, sys.stderr):  # a text the encoding cannot hold is escaped, not a crash
        if not writes_utf8(stream) and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        # Not Click's standalone mode: a usage error (a bad option value, an unknown option) becomes one
        # `error:` line like every other bad input, instead of Click's usage block.
        result = app(prog_name="sentiment", standalone_mode=False)
        code: Any = result if isinstance(result, int) else 0
    except typer.TyperException as exc:  # typer's Click exceptions: usage errors and the like
        code = _usage_error(exc)
    except typer.Abort:  # Ctrl-C at a prompt
        sys.stderr.write("interrupted\n")
        code = 130
    except SystemExit as exc:
        code = exc.code
    _exit_now(code)


def _usage_error(exc: Exception) -> int:
    """Print a Click usage error as one line naming the problem; return its exit status. A command group
    given no command (``sentiment``, ``sentiment config``) shows its help, as Click does."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()  # type: ignore[attr-defined]
        return 2
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    see = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    sys.stderr.write(f"error: {' '.join(message.split())}{see}\n")
    return int(getattr(exc, "exit_code", 2))


def _exit_now(code: Any) -> NoReturn:
    """Exit like ``sys.exit(code)`` without the interpreter tearing down every module and object one by one:
    after torch, pandas and scikit-learn that finalisation takes about a second on a 2-core machine, for
    memory the operating system frees anyway. Exit handlers (logging, temporary files, multiprocessing) still
    run and the standard streams are flushed; every file the commands write is closed before they return."""
    import atexit
    import contextlib

    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or debugger writes its report after the program: let it
    atexit._run_exitfuncs()  # what a normal exit runs before its teardown
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # a reader gone (| head), a closed stream
            stream.flush()
    os._exit(code)
