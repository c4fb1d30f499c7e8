"""``sentiment tune``: search config settings with Optuna for the best validation figure.

A trial is ``load_config(config, --set options, the trial's values)`` trained by
``pipeline.fit_and_validate``: the first fit and its validation metrics, no refit, no test split, nothing
written, so a trial costs the training alone (the prepared data and Word2Vec come from their caches unless
the trial changes their settings). Its figure is the validation metric the user names; each epoch's
figure goes to Optuna's pruner, which stops a trial that trails the others. The test split is never looked
at.

The study lives in an Optuna storage: a journal file in the output directory by default, or any URL
(SQLite, PostgreSQL ...). Several processes, on one machine (``--jobs``) or many (one URL), share a study
and stop when it holds ``trials`` trials; ``--resume`` continues a study a killed run left.

Results in the output directory: ``best.yaml`` (a complete config), ``trials.csv``, ``history.png``,
``importance.png`` and ``tune.json``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import re
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from sentiment.config import SHIPPED_SPACE, Config, check_compatible, check_files, load_config
from sentiment.errors import ConfigError, SentimentError, TrainingInterrupted
from sentiment.progress import Reporter
from sentiment.space import Param, load_space, short_names

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from sentiment.fit_state import EpochRecord
    from sentiment.pipeline import RunInputs, Validated

# The validation figure each --metric names, and which way is better.
METRICS = {"accuracy": "maximize", "f1": "maximize", "macro_f1": "maximize", "loss": "minimize"}
DEFAULT_STUDY = "tune"
JOURNAL_FILE = "study.log"
RESULT_FILES = ("best.yaml", "trials.csv", "history.png", "importance.png", "tune.json")
# Trials that hold a place in the study's budget: a failed one leaves its place to a new trial.
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
STUDY_ATTR = "sentiment"
# A running trial that never recorded its process is left alone this long (clocks of machines may differ).
UNCLAIMED_SECONDS = 600.0
# Settings that may differ between processes sharing a study: machines keep data in different places.
LOCAL_KEYS = (
    "output_dir",
    "device",
    "data.path",
    "data.test_path",
    "data.unlabeled_path",
    "word2vec.workers",
    "training.num_workers",
    "training.cpu_threads",
)


@dataclass
class TuneSettings:
    """What ``sentiment tune`` is asked for (its options)."""

    config: str = "default"  # a YAML file or a shipped config's name
    space: Path = SHIPPED_SPACE
    sets: list[str] = field(default_factory=list)  # --set KEY=VALUE, applied to every trial
    output: Path | None = None  # default: <output_dir>/tune-<config name>
    trials: int = 20  # the study's budget: trials run (complete or pruned) by every process together
    timeout: float | None = None  # seconds after which no trial starts
    jobs: int = 1  # worker processes on this machine
    storage: str | None = None  # an Optuna database URL or a journal file; default: <output>/study.log
    study: str = DEFAULT_STUDY
    metric: str = "accuracy"
    seed: int | None = None  # the sampler's; default: the config's seed
    resume: bool = False
    prune: bool = True
    # A trial is pruned when its best figure so far is in this bottom percentile of the earlier trials'
    # figures at the same epoch. Not the median: on the stand-in the winner learnt slowly and trailed the
    # median at its sixth epoch; the bottom quarter stops the clearly bad trials only.
    prune_percentile: float = 25.0
    prune_startup_trials: int = 5  # trials that finish before the pruner compares
    # epochs of each trial it never prunes in; default: the config's training.patience (early epochs say
    # little: on the stand-in, slow starters pruned at epoch 1 would have ended among the best)
    prune_warmup_epochs: int | None = None
    verbose: bool = False


@dataclass
class Plan:
    """Settings checked and resolved: everything a worker process needs (picklable)."""

    settings: TuneSettings
    base: Config  # the config with --set applied, before any trial value
    space: list[Param]
    output: Path
    storage: str  # a database URL, or the journal file's absolute path
    storage_shown: str  # for messages: the URL without its password
    seed: int
    direction: str


@dataclass
class TuneResult:
    output: Path
    study: str
    storage: str
    metric: str
    direction: str
    counts: dict[str, int]  # complete, pruned, failed
    best: dict[str, Any] | None  # number, value, params (config values), validation metrics
    files: list[Path]
    notes: list[str]
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "study": self.study,
            "storage": self.storage,
            "metric": self.metric,
            "direction": self.direction,
            "trials": self.counts,
            "best": self.best,
            "files": [str(f) for f in self.files],
            "notes": self.notes,
            "interrupted": self.interrupted,
        }


# --- planning: every input checked before any trial ---------------------------------------------------------


def make_plan(settings: TuneSettings) -> Plan:
    """Check the settings, the config and the space; resolve the output directory and the storage."""
    if settings.metric not in METRICS:
        raise ConfigError(f"unknown --metric '{settings.metric}'; choose {', '.join(METRICS)}")
    if settings.trials < 1 or settings.jobs < 1:
        raise ConfigError("--trials and --jobs must be at least 1")
    if settings.timeout is not None and not settings.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {settings.timeout}")
    base = load_config(settings.config, settings.sets)
    check_compatible(base)
    check_files(base)
    space = load_space(Path(settings.space), settings.config, settings.sets)
    if base.data.val_size == 0 and "data.val_size" not in {p.key for p in space}:
        raise ConfigError("tune compares validation figures: set data.val_size > 0")
    name = Path(str(settings.config)).name.removesuffix(".yaml")
    output = (
        Path(settings.output)
        if settings.output is not None
        else Path(base.output_dir).expanduser() / f"tune-{name}"
    )
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} exists and is not a directory")
    from sentiment.atomic import check_writable

    check_writable(output, "--output")
    storage = settings.storage or str(output / JOURNAL_FILE)
    if not _is_url(storage):
        storage = str(Path(storage).expanduser().resolve())
    seed = settings.seed if settings.seed is not None else base.seed
    return Plan(
        settings, base, space, output, storage, _hide_password(storage), seed, METRICS[settings.metric]
    )


def _is_url(storage: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", storage) is not None


def _hide_password(storage: str) -> str:
    if not _is_url(storage):
        return storage
    try:
        from sqlalchemy.engine import make_url

        return make_url(storage).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: show its scheme only
        return storage.split("://", 1)[0] + "://..."


def open_storage(plan: Plan) -> BaseStorage:
    """The study's storage: a database through SQLAlchemy, or Optuna's journal file (safe for several
    processes on one machine, where SQLite would lock)."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if not _is_url(plan.storage):
        Path(plan.storage).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(plan.storage))
    for attempt in range(3):
        try:
            return RDBStorage(_with_driver(plan.storage))
        except ImportError:
            raise SentimentError(
                f"--storage {plan.storage_shown}: its database driver is not installed (PostgreSQL: "
                "pip install 'psycopg[binary]', or sentiment[postgres])"
            ) from None
        except Exception as exc:  # a bad URL, a server that does not answer
            if attempt < 2 and ("already exists" in str(exc) or "duplicate key" in str(exc)):
                # processes starting together all create Optuna's tables in a new database: one wins
                time.sleep(0.5 + attempt)
                continue
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise SentimentError(f"--storage {plan.storage_shown}: cannot open it ({reason})") from None
    raise AssertionError("unreachable")


def _with_driver(url: str) -> str:
    """``postgresql://`` through the driver that is installed: SQLAlchemy 2.0 takes it for psycopg2, 2.1 for
    psycopg (3); sentiment[postgres] brings psycopg."""
    import importlib.util

    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    return url


def _study_record(plan: Plan) -> dict[str, Any]:
    """What a study remembers of its search, to refuse a resume or a second process that would mix
    trials of another search into it."""
    config = plan.base.to_dict()
    for key in LOCAL_KEYS:
        section, _, name = key.rpartition(".")
        (config.get(section, {}) if section else config).pop(name, None)
    record = {"metric": plan.settings.metric, "space": [p.to_dict() for p in plan.space], "config": config}
    return json.loads(json.dumps(record))  # as the storage gives it back (tuples -> lists)


def open_study(plan: Plan, storage: BaseStorage, reporter: Reporter) -> optuna.Study:
    """Create the study, or load it when resuming (or joining one another process made): same search only."""
    from sentiment.checkpoint import config_differences

    settings, name = plan.settings, plan.settings.study
    exists = name in optuna.study.get_all_study_names(storage)
    if settings.resume and not exists:
        raise SentimentError(f"nothing to resume: no study '{name}' in {plan.storage_shown}")
    if exists and settings.storage is None and not settings.resume:
        n = len(optuna.load_study(study_name=name, storage=storage).trials)
        raise SentimentError(
            f"{plan.output} already holds a tune ({n} trials): --resume continues it; or choose another "
            "--output"
        )
    study = optuna.create_study(
        storage=storage, study_name=name, direction=plan.direction, load_if_exists=True
    )
    record, saved = _study_record(plan), study.user_attrs.get(STUDY_ATTR)
    if saved is None:
        study.set_user_attr(STUDY_ATTR, record)
        return study
    if saved.get("metric") != record["metric"]:
        raise SentimentError(
            f"study '{name}' compares validation {saved.get('metric')}, not {record['metric']}: pass "
            f"--metric {saved.get('metric')}, or choose another --study"
        )
    if saved.get("space") != record["space"]:
        old = {p["key"]: p for p in saved.get("space", [])}
        new = {p["key"]: p for p in record["space"]}
        keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise SentimentError(
            f"study '{name}' searches another space (it differs in {', '.join(keys[:3])}): give the same "
            "--space, or choose another --study"
        )
    changed = config_differences(saved.get("config", {}), record["config"])
    if changed:
        raise SentimentError(
            f"study '{name}' was made with other settings ({'; '.join(changed[:3])}): give the same --config "
            "and --set options, or choose another --study"
        )
    if exists:
        reporter.log(f"study '{name}' in {plan.storage_shown}: {len(study.trials)} trials so far")
    return study


# --- trials -------------------------------------------------------------------------------------------------


def _process_token() -> str:
    """This process, told apart from a later one that reuses its pid (Linux: with its start time)."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, counted after the command name


def _process_alive(token: str) -> bool:
    pid_text, _, started = token.partition(":")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return _start_time(pid) == started


def fail_orphaned_trials(study: optuna.Study, storage: BaseStorage) -> list[int]:
    """Mark failed the trials left running by processes of this machine that are gone (a killed tune), so
    their places in the budget go to new trials. Trials of other machines are theirs to finish; a trial that
    never recorded its process (killed right after asking) is failed after ``UNCLAIMED_SECONDS``."""
    host, study_id = socket.gethostname(), storage.get_study_id_from_name(study.study_name)
    orphans = []
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is None:
            # A process killed between asking for the trial and recording itself (milliseconds apart):
            # no process can own it once that gap has long passed, on any machine.
            started = trial.datetime_start or now
            if (now - started).total_seconds() < UNCLAIMED_SECONDS:
                continue
        elif worker.get("host") != host or _process_alive(str(worker.get("process", ""))):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # another process was quicker
            storage.set_trial_user_attr(trial_id, "interrupted", True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            orphans.append(trial.number)
    return orphans


def epoch_figure(record: EpochRecord, metric: str) -> float | None:
    """An epoch's validation figure for ``metric`` (what the pruner compares)."""
    return {
        "accuracy": record.val_accuracy,
        "f1": record.val_f1,
        "macro_f1": record.val_f1,  # metrics.py: f1 is the macro average when there are more labels
        "loss": record.val_loss,
    }[metric]


def objective_value(validated: Validated, metric: str) -> float:
    """The trial's figure: the validation metric of the weights the fit kept."""
    if metric == "loss":
        return validated.val_loss
    if metric == "macro_f1" and validated.task == "binary":
        raise SentimentError(
            "--metric macro_f1 is for more than two labels; with two, use f1 (the positive label's) or "
            "accuracy"
        )
    return float(validated.val_metrics[metric.removeprefix("macro_")])


class PruningHook:
    """``fit_and_validate``'s epoch callback: each epoch's figure to the trial; TrialPruned when the pruner
    says the trial trails (it leaves the fit at once: training stops, nothing is written)."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.epochs = 0

    def __call__(self, record: EpochRecord) -> None:
        self.epochs = record.epoch
        value = epoch_figure(record, self.metric)
        if value is None:
            return
        self.trial.report(value, record.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record.epoch}")


class _OnceReporter(Reporter):
    """A trial's reporter: each warning once per tune (every trial would repeat the data's)."""

    def __init__(self, seen: set[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seen = seen

    def warn(self, message: str) -> None:
        if message not in self._seen:
            self._seen.add(message)
            super().warn(message)


def run_config(config: Config, jobs: int) -> Config:
    """The config a trial trains with: with several workers on this machine, each takes its share of the
    cores (thread settings do not change results, so best.yaml keeps the user's)."""
    if jobs == 1:
        return config
    share = max(1, (os.cpu_count() or 1) // jobs)
    training, word2vec = config.training, config.word2vec
    return config.model_copy(
        update={
            "training": training.model_copy(update={"cpu_threads": training.cpu_threads or share}),
            "word2vec": word2vec.model_copy(update={"workers": word2vec.workers or share}),
        }
    )


def run_trial(plan: Plan, study: optuna.Study, trial: optuna.Trial, worker: int, reporter: Reporter) -> None:
    """Train one trial's settings and tell the study its figure (or that it was pruned or failed)."""
    from sentiment.pipeline import fit_and_validate

    settings = plan.settings
    trial.set_user_attr(
        "worker", {"host": socket.gethostname(), "process": _process_token(), "index": worker}
    )
    hook = PruningHook(trial, settings.metric)
    start = time.perf_counter()
    try:
        values = {p.key: p.suggest(trial) for p in plan.space}
        config = load_config(settings.config, settings.sets, values)
        validated = fit_and_validate(
            run_config(config, settings.jobs),
            reporter=reporter,
            on_epoch=hook,
            on_ready=_record_caches(trial),
        )
        value = objective_value(validated, settings.metric)
    except optuna.TrialPruned:
        trial.set_user_attr("epochs", hook.epochs)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        study.tell(trial, state=TrialState.PRUNED)
        return
    except ConfigError as exc:  # settings valid alone but not together: this trial fails, the tune goes on
        trial.set_user_attr("error", str(exc))
        study.tell(trial, state=TrialState.FAIL)
        reporter.warn(f"trial {trial.number} failed: {exc}")
        return
    except (TrainingInterrupted, KeyboardInterrupt):
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        raise
    except BaseException as exc:
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
        study.tell(trial, state=TrialState.FAIL)
        raise
    metrics = validated.val_metrics
    for key, attr in (
        ("epochs", len(validated.history)),
        ("best_epoch", validated.best_epoch),
        ("seconds", round(time.perf_counter() - start, 2)),
        ("val_accuracy", metrics.get("accuracy")),
        ("val_f1", metrics.get("f1")),
        ("val_loss", validated.val_loss),
    ):
        trial.set_user_attr(key, attr)
    study.tell(trial, value)


def _record_caches(trial: optuna.Trial) -> Callable[[RunInputs], None]:
    def record(run: RunInputs) -> None:
        trial.set_user_attr("word2vec_cache_hit", run.prepared.word2vec_cache_hit)
        trial.set_user_attr("prepared_cache_hit", run.prepared.cache_hit)

    return record


def _taken(study: optuna.Study, below: int | None = None) -> int:
    trials = study.get_trials(deepcopy=False, states=TAKEN)
    return sum(1 for t in trials if below is None or t.number < below)


def _sampler_seed(seed: int, worker: int, trials_before: int) -> int:
    """Each worker its own stream, and a resumed study a new one (a restarted sampler with the first seed
    would propose the first trials' settings again)."""
    return int(np.random.SeedSequence([seed, worker, trials_before]).generate_state(1)[0])


def run_worker(
    plan: Plan,
    worker: int,
    deadline: float | None,
    storage: BaseStorage,
    reporter: Reporter,
    on_trial: Callable[[], None] | None = None,
    announce: Callable[[int], contextlib.AbstractContextManager[None]] | None = None,
) -> None:
    """Ask, train, tell, until the study holds its budget of trials or ``deadline`` (time.time()) passes.

    The budget is the study's, shared with every other process: a trial asked for when it was already full
    (two processes asked at once) is dropped as surplus before it trains.
    """
    settings = plan.settings
    trials_before = len(optuna.load_study(study_name=settings.study, storage=storage).trials)
    sampler = optuna.samplers.TPESampler(seed=_sampler_seed(plan.seed, worker, trials_before))
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.PercentilePruner(
            100.0 - settings.prune_percentile,  # Optuna's percentile is the share of trials kept
            n_startup_trials=settings.prune_startup_trials,
            n_warmup_steps=_warmup(plan) + 1,
            n_min_trials=min(3, settings.prune_startup_trials),  # never against one other trial's figure
        )
        if settings.prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.load_study(study_name=settings.study, storage=storage, sampler=sampler, pruner=pruner)
    seen_warnings: set[str] = set()
    while (deadline is None or time.time() < deadline) and _taken(study) < settings.trials:
        failed = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if "error" in t.user_attrs
        ]
        if len(failed) >= settings.trials:
            raise SentimentError(f"{len(failed)} trials failed, the last: {failed[-1].user_attrs['error']}")
        trial = study.ask()
        if _taken(study, below=trial.number) >= settings.trials:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            break
        trial_reporter = _OnceReporter(
            seen_warnings, quiet=not settings.verbose, verbose=settings.verbose, live=False
        )
        with announce(trial.number) if announce is not None else contextlib.nullcontext():
            run_trial(plan, study, trial, worker, trial_reporter)
        if on_trial is not None:
            on_trial()


def _warmup(plan: Plan) -> int:
    """Epochs never pruned (Optuna's n_warmup_steps is the first prunable step; epochs count from 1)."""
    warmup = plan.settings.prune_warmup_epochs
    return warmup if warmup is not None else max(plan.base.training.patience, 1)


def _worker_process(plan: Plan, worker: int, deadline: float | None) -> None:
    """A ``--jobs`` worker (a spawned process): trials until the budget or the deadline; exit 130 when
    interrupted, 2 on bad input."""
    from sentiment.checkpoint import terminate_as_interrupt

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reporter = Reporter(quiet=True, live=False)
    try:
        with terminate_as_interrupt():  # the coordinator stops its workers with SIGTERM: clean up like Ctrl-C
            run_worker(plan, worker, deadline, open_storage(plan), reporter)
    except (KeyboardInterrupt, TrainingInterrupted):
        sys.exit(130)
    except SentimentError as exc:
        print(f"error: tune worker {worker}: {exc}", file=sys.stderr)
        sys.exit(2)


def run_workers(plan: Plan, deadline: float | None, on_trial: Callable[[], None]) -> None:
    """``--jobs J``: J spawned worker processes on the study's storage, shown as their trials finish."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    processes = [
        context.Process(target=_worker_process, args=(plan, i, deadline), name=f"sentiment-tune-{i}")
        for i in range(plan.settings.jobs)
    ]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            on_trial()
            wait([p.sentinel for p in processes if p.is_alive()], timeout=1.0)
    except KeyboardInterrupt:
        for process in processes:  # a Ctrl-C reached them too; a signal to this process alone did not
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
                process.join()
        raise
    codes = [p.exitcode for p in processes]
    if 130 in codes:
        raise KeyboardInterrupt
    failed = [(i, code) for i, code in enumerate(codes) if code]
    if failed:
        raise SentimentError(
            f"tune worker {failed[0][0]} stopped with exit status {failed[0][1]} (its error is above)"
        )


def warm_caches(plan: Plan, reporter: Reporter) -> None:
    """Before several workers start: prepare the data (and train Word2Vec) once, so that they do not all
    compute the same cache entry at the same time. Only when no trial changes those settings."""
    if any(p.key.split(".")[0] in ("data", "text", "word2vec") for p in plan.space):
        return
    from sentiment.prepare import prepare

    reporter.log(
        "preparing the data once for every worker (data, text and Word2Vec settings are not searched)"
    )
    prepare(plan.base, Reporter(quiet=True, live=False))


# --- the whole tune -----------------------------------------------------------------------------------------


def tune(
    settings: TuneSettings,
    *,
    reporter: Reporter | None = None,
    on_trial: Callable[[TrialRow], None] | None = None,
    announce: Callable[[int], contextlib.AbstractContextManager[None]] | None = None,
) -> TuneResult:
    """Run (or continue) a study and write its results; ``on_trial`` gets each trial as it finishes (earlier
    ones of a resumed study first). Ctrl-C stops after the current batch, marks that trial failed and still
    writes the results (``TuneResult.interrupted``)."""
    started = time.time()  # --timeout counts from here
    reporter = reporter or Reporter(quiet=True)
    plan = make_plan(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our table says what Optuna's INFO lines would
    storage = open_storage(plan)
    study = open_study(plan, storage, reporter)
    orphans = fail_orphaned_trials(study, storage)
    if orphans:
        reporter.log(
            f"trials {', '.join(map(str, orphans))} were left running by a process that is gone: failed"
        )
    names = ", ".join(p.key for p in plan.space)
    reporter.log(f"tune: {settings.trials} trials of {names}; best validation {settings.metric} wins")
    deadline = started + settings.timeout if settings.timeout is not None else None
    shown: set[int] = set()

    def show_finished() -> None:
        for trial in sorted(_finished(study), key=lambda t: t.number):
            if trial.number not in shown:
                shown.add(trial.number)
                if on_trial is not None:
                    on_trial(trial_row(trial, plan.space))

    show_finished()
    interrupted = False
    try:
        if settings.jobs == 1:
            run_worker(plan, 0, deadline, storage, reporter, show_finished, announce)
        else:
            warm_caches(plan, reporter)
            run_workers(plan, deadline, show_finished)
    except (KeyboardInterrupt, TrainingInterrupted):
        interrupted = True
    show_finished()
    result = write_results(plan, study)
    result.interrupted = interrupted
    return result


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.user_attrs.get("surplus")]


# --- results ------------------------------------------------------------------------------------------------


@dataclass
class TrialRow:
    """One finished trial as the table shows it."""

    number: int
    state: str  # complete, pruned, failed, interrupted
    value: float | None
    params: dict[str, Any]  # config key -> value as the config takes it
    epochs: int | None
    seconds: float | None
    error: str | None = None


def trial_row(trial: FrozenTrial, space: list[Param]) -> TrialRow:
    attrs = trial.user_attrs
    state = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned"}.get(trial.state, "failed")
    if trial.state == TrialState.FAIL and attrs.get("interrupted"):
        state = "interrupted"
    seconds = attrs.get("seconds")
    if seconds is None and trial.duration is not None:
        seconds = round(trial.duration.total_seconds(), 2)
    params = {p.key: p.decode(trial.params[p.key]) for p in space if p.key in trial.params}
    return TrialRow(
        trial.number, state, trial.value, params, attrs.get("epochs"), seconds, attrs.get("error")
    )


def write_results(plan: Plan, study: optuna.Study) -> TuneResult:
    """best.yaml, trials.csv, the two plots and tune.json into the output directory."""
    from sentiment.atomic import write_atomic

    output, metric = plan.output, plan.settings.metric
    output.mkdir(parents=True, exist_ok=True)
    trials = sorted(_finished(study), key=lambda t: t.number)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {
        "complete": len(complete),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
    }
    files, notes = [write_trials_csv(output / "trials.csv", trials, plan)], []
    best = None
    if complete:
        trial = study.best_trial
        params = trial_row(trial, plan.space).params
        best = {
            "number": trial.number,
            "value": trial.value,
            "params": params,
            **{k: trial.user_attrs.get(k) for k in ("val_accuracy", "val_f1", "val_loss", "epochs")},
        }
        files.append(write_best_config(output / "best.yaml", plan, trial.number, trial.value, params))
    else:
        notes.append("no trial completed, so there is no best.yaml")
    if trials:
        files.append(plot_history(output / "history.png", trials, metric, plan.direction))
    importance = plot_importance(output / "importance.png", study, plan.space, len(complete))
    if isinstance(importance, Path):
        files.append(importance)
    else:
        notes.append(importance)
    result = TuneResult(
        output, plan.settings.study, plan.storage_shown, metric, plan.direction, counts, best, files, notes
    )
    summary = output / "tune.json"
    result.files.append(summary)
    write_atomic(summary, json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def write_best_config(path: Path, plan: Plan, number: int, value: float, params: dict[str, Any]) -> Path:
    """The config with the best trial's values: ``sentiment train --config best.yaml`` takes it as is."""
    from sentiment.atomic import write_atomic

    config = load_config(plan.settings.config, plan.settings.sets, params)
    lines = [
        f"# The best settings sentiment tune found: trial {number} of study '{plan.settings.study}', "
        f"validation {plan.settings.metric} {value:.4f}.",
        f"# {plan.settings.config} with these values: "
        + ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()),
        "# Train it: sentiment train --config " + str(path),
    ]
    write_atomic(path, "\n".join(lines) + "\n" + config.to_yaml())
    return path


def write_trials_csv(path: Path, trials: list[FrozenTrial], plan: Plan) -> Path:
    from sentiment.atomic import atomic_file

    extra = ("epochs", "best_epoch", "seconds", "val_accuracy", "val_f1", "val_loss")
    caches = ("word2vec_cache_hit", "prepared_cache_hit")
    header = [
        "trial",
        "state",
        f"validation_{plan.settings.metric}",
        *(p.key for p in plan.space),
        *extra,
        *caches,
    ]
    header += ["host", "started", "error"]
    with atomic_file(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for trial in trials:
            row, attrs = trial_row(trial, plan.space), trial.user_attrs
            values = [
                json.dumps(row.params[p.key])
                if isinstance(row.params.get(p.key), list | dict)
                else row.params.get(p.key, "")
                for p in plan.space
            ]
            started = trial.datetime_start.isoformat(timespec="seconds") if trial.datetime_start else ""
            writer.writerow(
                [row.number, row.state, "" if row.value is None else row.value, *values]
                + ["" if attrs.get(k) is None else attrs[k] for k in (*extra, *caches)]
                + [(attrs.get("worker") or {}).get("host", ""), started, row.error or ""]
            )
    return path


def plot_history(path: Path, trials: list[FrozenTrial], metric: str, direction: str) -> Path:
    """Each trial's figure (pruned ones at their last epoch's) and the best so far."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from sentiment.atomic import atomic_file

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    better = max if direction == "maximize" else min
    for state, style in (
        (TrialState.COMPLETE, {"marker": "o", "color": "tab:blue", "label": "complete"}),
        (TrialState.PRUNED, {"marker": "x", "color": "tab:gray", "label": "pruned (its last epoch)"}),
    ):
        points = [(t.number, t.value) for t in trials if t.state == state and t.value is not None]
        if points:
            ax.scatter(*zip(*points, strict=True), s=28, zorder=3, **style)
    best, steps = None, []
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            best = trial.value if best is None else better(best, trial.value)
        if best is not None:
            steps.append((trial.number, best))
    if steps:
        ax.step(*zip(*steps, strict=True), where="post", color="tab:orange", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trial numbers, not 2.5
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("Optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path


def plot_importance(path: Path, study: optuna.Study, space: list[Param], complete: int) -> Path | str:
    """Optuna's parameter importances (how much each setting explains of the figure) as bars; a note
    instead when there is too little to tell."""
    if complete < 2:
        return f"importance.png needs 2 completed trials, the study has {complete}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-API notices
            importances = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError) as exc:
        return f"no importance.png: {exc}"
    if not importances:
        return "no importance.png: no setting varied across the completed trials"
    from matplotlib.figure import Figure

    from sentiment.atomic import atomic_file

    names = list(importances)[::-1]
    fig = Figure(figsize=(7, 0.5 * len(names) + 1.4))
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance (share of the figure's variation)")
    ax.set_title(f"Setting importances over {complete} completed trials")
    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100)
    return path


# --- the table of trials ------------------------------------------------------------------------------------


class TrialTable:
    """Finished trials as they come: rows of a rich table on a terminal, one plain line each elsewhere."""

    def __init__(self, space: list[Param], metric: str, direction: str, stream: TextIO | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.rich = self.console.is_terminal
        self.names = short_names(space)
        self.metric, self.maximize = metric, direction == "maximize"
        self.best: float | None = None
        self._header = True

    def settings(self, params: dict[str, Any]) -> str:
        return "  ".join(f"{self.names.get(k, k)}={_short(v)}" for k, v in params.items())

    def add(self, row: TrialRow) -> None:
        new_best = (
            row.state == "complete"
            and row.value is not None
            and (self.best is None or (row.value > self.best if self.maximize else row.value < self.best))
        )
        if new_best:
            self.best = row.value
        value = f"{row.value:.4f}" if row.value is not None else "-"
        best = f"{self.best:.4f}" if self.best is not None else "-"
        epochs = str(row.epochs) if row.epochs is not None else "-"
        seconds = f"{row.seconds:.1f}" if row.seconds is not None else "-"
        settings = self.settings(row.params) + (f"  ({row.error})" if row.error else "")
        if not self.rich:
            mark = " *" if new_best else ""
            self.console.print(
                f"trial {row.number:>3}  {row.state:<11}  {self.metric} {value}{mark}  best {best}  "
                f"{epochs:>3} epochs  {seconds:>6} s  {settings}",
                markup=False,
            )
            return
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_header=self._header, show_edge=False, pad_edge=False)
        for name, width, justify in (
            ("trial", 5, "right"),
            ("state", 11, "left"),
            (self.metric, 8, "right"),
            ("best", 8, "right"),
            ("epochs", 6, "right"),
            ("seconds", 7, "right"),
        ):
            table.add_column(name, width=width, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        table.add_column("settings", overflow="fold")
        style = (
            "bold green"
            if new_best
            else {"pruned": "dim", "failed": "red", "interrupted": "red"}.get(row.state)
        )
        table.add_row(str(row.number), row.state, value, best, epochs, seconds, settings, style=style)
        self._header = False
        self.console.print(table)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def trial_notice(reporter: Reporter) -> Callable[[int], contextlib.AbstractContextManager[None]]:
    """A notice while a trial trains: a spinner on a terminal, a line elsewhere (none with --quiet)."""

    @contextlib.contextmanager
    def running(number: int) -> Iterator[None]:
        text = f"trial {number}: training"
        if reporter.live and not reporter.verbose:
            with reporter.console.status(text):
                yield
            return
        reporter.step(text)
        yield

    return running
