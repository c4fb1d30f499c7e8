"""The whole job: data -> token ids -> features -> classifier -> metrics -> saved model directory.

``train`` is what ``sentiment train`` calls; a Python user can call it the same way::

    from sentiment import load_config, train
    result = train(load_config("default", ["training.epochs=3"]), "runs/first")
"""

from __future__ import annotations

import functools
import math
import reprlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment import distributed
from sentiment.checkpoint import RunCheckpoint, StopRequest
from sentiment.config import Config, check_compatible
from sentiment.errors import CheckpointError, ConfigError, TrainingInterrupted
from sentiment.features import Features
from sentiment.fit_state import FitStopped
from sentiment.prepare import prepare
from sentiment.prepared import Prepared
from sentiment.progress import Reporter

if TYPE_CHECKING:
    import torch
    from torch import nn

    from sentiment.batches import Loaders
    from sentiment.fit_state import EpochRecord, FitResult
    from sentiment.modeldir import SavedModel


@dataclass
class TrainOutput:
    model_dir: Path
    metrics: dict[str, Any]
    val_metrics: dict[str, Any] | None
    history: list[dict[str, Any]]  # one row per epoch; "phase": "fit", or "refit" for the kept refit model
    labels: list[str]  # class names by index
    timings: dict[str, float] = field(default_factory=dict)
    word2vec_cache_hit: bool = False


def train(
    config: Config,
    output: str | Path | None = None,
    *,
    config_name: str = "model",
    reporter: Reporter | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainOutput:
    """Train, evaluate on the test split and save a model directory (atomically). Returns the metrics.

    SIGINT / SIGTERM during the epochs stop training after the current batch: the state goes to a checkpoint
    next to the model directory (which stays as it was) and ``TrainingInterrupted`` is raised. ``resume=True``
    continues from that checkpoint, to the same result as a run that was never interrupted. ``on_epoch`` hears
    of each epoch of the first fit (see ``fit_and_validate``).
    """
    check_compatible(config)
    reporter = distributed.rank_reporter(reporter or Reporter(quiet=True))  # ranks > 0: silent
    with distributed.process_group(config.device):  # torchrun with several ranks: DDP; otherwise nothing
        return _train(config, output, config_name, reporter, resume, on_epoch)


def _train(
    config: Config,
    output: str | Path | None,
    config_name: str,
    reporter: Reporter,
    resume: bool,
    on_epoch: Callable[[EpochRecord], None] | None,
) -> TrainOutput:
    # rank 0 checks the output path and the checkpoint, and prepares the data; the other ranks get them
    target = distributed.share(lambda: output_path(config, output, config_name))
    checkpoint = distributed.share(lambda: RunCheckpoint(target, config.to_dict(), resume, reporter))
    run = set_up(config, reporter)  # runtime set-up -> prepare -> Features.fit -> datasets and loaders
    prepared, features, device, datasets = run.prepared, run.features, run.device, run.datasets
    checkpoint.check_data(prepared.vectors, features.weights_, *_split_arrays(prepared, "train", "val"))
    classes, names = run.classes, run.classes.labels

    model, fitted = fit_classifier(
        config, features, run.loaders, device, reporter, checkpoint, classes, on_epoch=on_epoch
    )
    with reporter.stage("validate"):
        threshold, val_metrics = validate(config, model, run.loaders, device, reporter, names)
    history = [{**row, "phase": "fit"} for row in fitted.history_rows()]
    refit = None
    if config.training.refit and datasets["val"] is not None:
        model, refitted = refit_classifier(
            config, features, datasets, fitted, device, reporter, checkpoint, classes
        )
        refit = {"epochs": len(refitted.history), "rows": len(datasets["train"]) + len(datasets["val"])}
        history += [{**row, "phase": "refit"} for row in refitted.history_rows()]
    with reporter.stage("evaluate"):
        from sentiment import modeldir, run_report
        from sentiment.metrics import compute_metrics
        from sentiment.trainer import predict_probs

        test_probs, test_y = predict_probs(model, run.loaders.test, device)
        metrics = compute_metrics(test_y, test_probs, threshold, names)

    if distributed.is_main():  # one model directory, written by rank 0
        with reporter.stage("save"):
            saved = saved_model(config, prepared, features, model, fitted, refit, threshold, device)
            report = run_report.RunReport(
                {"test": metrics, "validation": val_metrics, "threshold": threshold},
                history,
                prepared.labels["test"],
                test_probs,
                prepared.write_test_rows,
            )
            write_report = functools.partial(run_report.write, model=saved, report=report, shown_as=target)
            modeldir.save(target, config, saved, beside=write_report)
            checkpoint.remove()  # the run is complete: nothing left to resume
    timings = dict(reporter.timings)
    return TrainOutput(target, metrics, val_metrics, history, names, timings, prepared.word2vec_cache_hit)


@dataclass
class RunInputs:
    """Everything up to the first fit: the device, the prepared data, fitted features, datasets and loaders,
    and what the classifier learns. ``train`` and a tune trial (``fit_and_validate``) start the same way."""

    device: torch.device
    prepared: Prepared
    features: Features
    datasets: dict[str, Any]
    loaders: Loaders
    classes: Classes


def set_up(config: Config, reporter: Reporter) -> RunInputs:
    """Runtime set-up -> ``prepare`` -> ``Features.fit`` -> datasets and loaders -> the classes."""
    with reporter.stage("start-up"):  # importing torch is most of it
        from sentiment import runtime
        from sentiment.batches import feature_buffers, make_datasets, make_loaders

        device = distributed.rank_device(runtime.setup(config))  # several ranks on GPUs: one each
    reporter.log(f"device: {runtime.describe_device(device)}" + distributed.describe())

    prepared = distributed.share(lambda: prepare(config, reporter))  # several ranks: prepared once, on rank 0
    with reporter.stage("features"):
        buffers = feature_buffers(prepared, feature_dim(config, prepared))  # on disk for out-of-core data
        features, train_x = fit_features(config, prepared, buffers["train"])
        datasets = make_datasets(prepared, features, config.model.fine_tune_embeddings, train_x, buffers)
    loaders = make_loaders(datasets, config.training, config.seed, device)
    classes = classifier_classes(config, prepared, reporter)
    return RunInputs(device, prepared, features, datasets, loaders, classes)


@dataclass
class Validated:
    """A first fit's validation figures: what a tune trial compares."""

    val_metrics: dict[str, Any]
    history: list[dict[str, Any]]  # one row per epoch of the fit
    best_epoch: int  # the epoch whose weights were kept (by training.monitor)
    labels: list[str]
    task: str
    word2vec_cache_hit: bool
    prepared_cache_hit: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def val_loss(self) -> float:
        """The validation loss of the kept weights (those of the best epoch)."""
        row = next(r for r in self.history if r["epoch"] == self.best_epoch)
        return float(row["val_loss"])


def fit_and_validate(
    config: Config,
    *,
    reporter: Reporter | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_ready: Callable[[RunInputs], None] | None = None,
) -> Validated:
    """``train`` up to its validation metrics and no further: no refit, no test split, nothing written (no
    model directory, no checkpoint: a tune trial that stops is redone, not resumed).

    ``on_epoch`` gets each epoch's record (validation loss, accuracy, F1) after the progress display; an
    exception it raises (a pruned tune trial's) stops training at once and leaves ``fit_and_validate``.
    ``on_ready`` gets the prepared run before the fit starts (a tune records its cache hits there, for
    pruned trials too).
    """
    check_compatible(config)
    if config.data.val_size == 0:
        raise ConfigError("comparing settings needs a validation split: set data.val_size > 0")
    reporter = reporter or Reporter(quiet=True)
    run = set_up(config, reporter)
    if on_ready is not None:
        on_ready(run)
    model, fitted = fit_classifier(
        config, run.features, run.loaders, run.device, reporter, None, run.classes, on_epoch=on_epoch
    )
    with reporter.stage("validate"):
        _, val_metrics = validate(config, model, run.loaders, run.device, reporter, run.classes.labels)
    assert val_metrics is not None  # val_size > 0: there is a validation split
    return Validated(
        val_metrics,
        fitted.history_rows(),
        fitted.best_epoch,
        run.classes.labels,
        run.classes.task,
        run.prepared.word2vec_cache_hit,
        run.prepared.cache_hit,
        dict(reporter.timings),
    )


def output_path(config: Config, output: str | Path | None, config_name: str) -> Path:
    """Where the model directory goes, checked before any work: a path that cannot be written is an error
    now, not after the training (and so is a state directory that cannot hold the caches)."""
    # output_dir is expanded as data.path is (`~/runs`, not a folder named ~); --output the shell expands
    target = Path(output) if output is not None else Path(config.output_dir).expanduser() / config_name
    try:
        return _check_output(target)
    except OSError as exc:  # a name longer than the file system takes (ENAMETOOLONG), ...
        shown = reprlib.repr(str(target))[1:-1]
        raise ConfigError(f"the model directory {shown} cannot be used: {exc.strerror or exc}") from None


def _check_output(target: Path) -> Path:
    from sentiment.atomic import check_writable
    from sentiment.paths import home_dir, last_model_file

    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path exists and is not a directory: {target}")
    resolved = target.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise ConfigError(
            f"the model directory {target} is the current directory or holds it; name a new one"
        )
    if target.is_dir() and any(target.iterdir()) and not _holds_a_model(target):
        # it is replaced as a whole: never a folder of the user's files
        raise ConfigError(
            f"{target} exists and is not a model directory; give a new or empty directory, or a model's"
        )
    check_writable(target, "the model directory", probe=True)
    home = home_dir()
    if home.exists() and not home.is_dir():
        raise ConfigError(f"SENTIMENT_HOME {home} is a file; it must be a directory (or not exist yet)")
    check_writable(home, "the state directory (SENTIMENT_HOME)", probe=True)
    pointer = last_model_file()
    if pointer.exists() and not pointer.is_file():
        raise ConfigError(f"{pointer} is not a file; remove it (it records the last model trained)")
    return target


def _holds_a_model(folder: Path) -> bool:
    """Whether ``folder`` holds a saved model (its required files), which a new run may replace."""
    from sentiment.modeldir import REQUIRED_FILES

    return all((folder / name).is_file() for name in REQUIRED_FILES)


def fit_features(
    config: Config, prepared: Prepared, out: np.ndarray | None = None
) -> tuple[Features, np.ndarray | None]:
    """Features fitted on the training split, and its feature rows when the classifier takes them (into
    ``out`` when given: a matrix on disk for out-of-core data)."""
    features = Features.from_config(config.features)
    train_bags, y = prepared.bags["train"], prepared.labels["train"]
    if config.model.fine_tune_embeddings:  # the model pools its own (trainable) vectors
        fitted = features.fit(
            train_bags, y, prepared.vectors, prepared.counts, ratios=config.model.wide, out=out
        )
        return fitted, None
    return features, features.fit_transform(train_bags, y, prepared.vectors, prepared.counts, out=out)


def feature_dim(config: Config, prepared: Prepared) -> int:
    """Width of the classifier's input rows when it takes pooled features (frozen vectors)."""
    from sentiment.pooling import output_dim

    return output_dim(config.features.pooling, prepared.vectors.shape[1])


@dataclass
class Classes:
    """What the classifier learns to predict: the labels by index, the task and its loss's class weights."""

    labels: list[str]
    task: str  # binary, multiclass or multilabel
    class_weights: list[float] | None = None

    @property
    def outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.labels)


def classifier_classes(config: Config, prepared: Prepared, reporter: Reporter) -> Classes:
    """The labels, the task (said in one line when ``data.task`` is auto) and the class weights."""
    task = task_of(config, prepared)
    if config.data.task == "auto":
        names = prepared.label_names
        reporter.log(f"task: {task}, decided from the data's {len(names)} labels (data.task: auto)")
    alike = _labels_alike(prepared.label_names)
    if alike:  # " Positive" and "positive" are two classes, as written: most likely one, spelt twice
        reporter.warn(
            f"labels that differ only in case or spaces are separate classes: {alike}; if they are one, "
            "clean the label column or map them with data.label_map"
        )
    return Classes(prepared.label_names, task, class_weights(config, prepared, reporter))


def _labels_alike(names: list[str]) -> str:
    """The groups of labels equal once lower-cased and stripped, as "a / A; b / B " ('' when none)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.strip().lower(), []).append(name)
    return "; ".join(" / ".join(repr(n) for n in group) for group in groups.values() if len(group) > 1)


def class_weights(config: Config, prepared: Prepared, reporter: Reporter) -> list[float] | None:
    """``training.class_weight`` as one weight per class index (None: unweighted)."""
    setting, names, y = config.training.class_weight, prepared.label_names, prepared.labels["train"]
    if setting == "none":
        return None
    label_sets = y.ndim == 2
    if setting == "balanced" and label_sets:
        # each label's positive cells weigh (texts without it) / (texts with it), torch's pos_weight
        present = y.sum(axis=0)
        weights = [float((len(y) - c) / max(int(c), 1)) for c in present]
    elif setting == "balanced":
        counts = np.bincount(y, minlength=len(names))
        weights = [len(y) / (len(names) * max(int(c), 1)) for c in counts]
    else:
        unknown = sorted(set(setting) - set(names))
        if unknown:
            raise ConfigError(
                f"training.class_weight names {', '.join(map(repr, unknown))}, not a label of the data "
                f"(labels: {', '.join(names)})"
            )
        weights = [float(setting.get(name, 1.0)) for name in names]
    shown = ", ".join(f"{name} {w:.3g}" for name, w in zip(names, weights, strict=True))
    what = "weights of each label's positive cells" if label_sets else "class weights"
    reporter.log(f"{what}: {shown} ({setting if isinstance(setting, str) else 'given'})")
    return weights


def _split_arrays(prepared: Prepared, *names: str) -> list[np.ndarray]:
    """What a resumed run must see again: the ids and labels of the splits it trains and validates on."""
    out = []
    for name in names:
        bags = prepared.bags[name]
        if bags is not None:
            out += [bags.ids, bags.offsets, prepared.labels[name]]
    return out


def task_of(config: Config, prepared: Prepared) -> str:
    """binary, multiclass or multilabel (label sets: the training labels are a rows x labels matrix)."""
    from sentiment.data import resolve_task

    multilabel = prepared.labels["train"].ndim == 2
    return resolve_task(config.data, prepared.label_names, multilabel=multilabel)


def _build(config: Config, features: Features, classes: Classes) -> tuple[nn.Module, list[dict] | None]:
    """A fresh classifier: one sigmoid output for two labels, one logit per label for multiclass, one sigmoid
    per label for label sets."""
    from sentiment.model import build_classifier

    multilabel = classes.task == "multilabel"
    return build_classifier(
        config,
        features.vectors_,
        features.weights_,
        features.dim,
        classes.outputs,
        multilabel=multilabel,
        wide_ratios=features.ratios_,
    )


def fit_classifier(
    config: Config,
    features: Features,
    loaders: Loaders,
    device: torch.device,
    reporter: Reporter,
    checkpoint: RunCheckpoint | None,
    classes: Classes,
    *,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> tuple[nn.Module, FitResult]:
    """A fresh classifier trained with early stopping on the validation split; Ctrl-C leaves a checkpoint
    (none without ``checkpoint``). ``on_epoch`` hears of each epoch after the progress display."""
    from sentiment.fit_state import FitCallbacks
    from sentiment.trainer import fit

    model, param_groups = _build(config, features, classes)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    shape = "-".join(map(str, [features.dim, *config.model.hidden_dims, classes.outputs]))
    reporter.log(f"model: {type(model).__name__} {shape}, {n_params:,} trainable parameters")
    tcfg, stop = config.training, StopRequest()
    try:
        with reporter.stage("training"), reporter.training(tcfg.epochs) as progress, stop.installed():
            epoch_done = progress.on_epoch if on_epoch is None else _both(progress.on_epoch, on_epoch)
            save = distributed.main_only(checkpoint.save) if checkpoint is not None else None
            # several ranks: a stop any of them heard stops all after the same batch
            callbacks = FitCallbacks(epoch_done, progress.on_batch, distributed.agreed(stop), save)
            fitted = fit(
                model,
                loaders.train,
                loaders.val,
                tcfg,
                device,
                param_groups=param_groups,
                train_eval_loader=loaders.train_eval,
                callbacks=callbacks,
                resume=checkpoint.resume_state if checkpoint is not None else None,
                class_weights=classes.class_weights,
                multiclass=classes.task == "multiclass",
            )
    except CheckpointError as exc:  # its state does not fit this model (resume.ResumableFit)
        if checkpoint is None:
            raise
        raise checkpoint.unusable(str(exc)) from None
    except FitStopped as exc:
        if checkpoint is None:
            name = signal.Signals(stop.signum).name if stop.signum else "a signal"
            raise TrainingInterrupted(f"training interrupted by {name}", None, stop.signum or 2) from None
        message = checkpoint.interrupted(exc, stop.signum, tcfg.epochs)
        raise TrainingInterrupted(message, checkpoint.path, stop.signum or 2) from None
    reporter.log(_training_summary(fitted, tcfg.monitor, reporter.timings.get("training", 0.0)))
    return model, fitted


def _both(first: Callable[[EpochRecord], None], then: Callable[[EpochRecord], None]) -> Callable:
    def on_epoch(record: EpochRecord) -> None:
        first(record)
        then(record)

    return on_epoch


def _training_summary(fitted: FitResult, monitor: str, seconds: float) -> str:
    """One line: epochs run, the best epoch and its monitored value, early stopping."""
    epochs = len(fitted.history)
    line = f"training: {epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.1f} s"
    best = next((r for r in fitted.history if r.epoch == fitted.best_epoch), None)
    if best is not None and getattr(best, monitor) is not None:
        line += f"; best epoch {best.epoch} ({monitor} {getattr(best, monitor):.4f}), its weights kept"
    if fitted.stopped_early:
        line += "; stopped early"
    return line


def validate(
    config: Config,
    model: nn.Module,
    loaders: Loaders,
    device: torch.device,
    reporter: Reporter,
    labels: list[str] | None = None,
) -> tuple[Any, dict[str, Any] | None]:
    """The decision threshold (tuned on validation when asked; label sets: one per label) and the validation
    metrics at it."""
    from sentiment.metrics import best_threshold, compute_metrics
    from sentiment.trainer import predict_probs

    threshold = config.eval.threshold
    if loaders.val is None:
        return threshold, None
    probs, y = predict_probs(model, loaders.val, device)
    if y.ndim == 2:  # label sets: one threshold per label
        metric = config.eval.threshold_metric
        cuts = [threshold] * y.shape[1]
        if config.eval.tune_threshold:
            cuts = [best_threshold(y[:, c], probs[:, c], metric) for c in range(y.shape[1])]
            reporter.log(f"thresholds: one per label, each the best validation {metric}")
        return cuts, compute_metrics(y, probs, cuts, labels)
    if probs.ndim == 2:  # multiclass: the most probable label, no threshold to tune
        if config.eval.tune_threshold:
            reporter.warn("eval.tune_threshold applies to two labels; this task has more, it is ignored")
        return threshold, compute_metrics(y, probs, threshold, labels)
    if config.eval.tune_threshold:
        metric = config.eval.threshold_metric
        threshold = best_threshold(y, probs, metric)
        reporter.log(f"threshold: {threshold:.4f} (best validation {metric})")
    return threshold, compute_metrics(y, probs, threshold)


def refit_classifier(
    config: Config,
    features: Features,
    datasets: dict[str, Any],
    fitted: FitResult,
    device: torch.device,
    reporter: Reporter,
    checkpoint: RunCheckpoint,
    classes: Classes,
) -> tuple[nn.Module, FitResult]:
    """A fresh model on training + validation rows for the epochs early stopping chose: more data, while the
    validation figures stay honest (they come from the first model, which never saw those rows)."""
    import torch

    from sentiment.batches import concat_batches, make_loader
    from sentiment.fit_state import FitCallbacks
    from sentiment.trainer import fit

    tcfg, epochs = config.training, max(fitted.best_epoch, 1)
    torch.manual_seed(config.seed)
    model, param_groups = _build(config, features, classes)
    both = concat_batches(datasets["train"], datasets["val"])
    loader = make_loader(
        both, tcfg.batch_size, shuffle=True, seed=config.seed, num_workers=tcfg.num_workers, device=device
    )
    stop = StopRequest()
    try:
        with reporter.stage("refit"), reporter.training(epochs, "Refit") as progress, stop.installed():
            # what a stop saves is the finished first fit: --resume then skips it and redoes the refit
            save = distributed.main_only(lambda _: checkpoint.save(fitted.final))
            callbacks = FitCallbacks(
                progress.on_epoch, progress.on_batch, distributed.agreed(stop), save, math.inf
            )
            refit_config = tcfg.model_copy(update={"epochs": epochs, "patience": 0})
            refitted = fit(
                model,
                loader,
                None,
                refit_config,
                device,
                param_groups=param_groups,
                callbacks=callbacks,
                class_weights=classes.class_weights,
                multiclass=classes.task == "multiclass",
            )
    except FitStopped:
        message = checkpoint.refit_interrupted(stop.signum)
        raise TrainingInterrupted(message, checkpoint.path, stop.signum or 2) from None
    seconds = reporter.timings.get("refit", 0.0)
    reporter.log(
        f"refit: a fresh model on training + validation ({len(both):,} rows) for {epochs} epoch"
        f"{'s' if epochs != 1 else ''} in {seconds:.1f} s; validation metrics are the first model's"
    )
    return model, refitted


def saved_model(
    config: Config,
    prepared: Prepared,
    features: Features,
    model: nn.Module,
    fitted: FitResult,
    refit: dict[str, int] | None,
    threshold: float | list[float],
    device: torch.device,
) -> SavedModel:
    """The trained model as plain arrays and a meta record (what the model directory holds)."""
    from sentiment.model import export
    from sentiment.modeldir import ModelMeta, SavedModel

    mlp, tuned_vectors = export(model.cpu())
    per_label = isinstance(threshold, list)
    meta = ModelMeta(
        labels=prepared.label_names,
        threshold=config.eval.threshold if per_label else threshold,
        thresholds=threshold if per_label else None,
        task=task_of(config, prepared),
        text=prepared.encoder.to_dict(),
        features=features.to_dict(),
        activation=config.model.activation,
        input_dim=features.dim,
        hidden_dims=config.model.hidden_dims,
        fine_tuned_embeddings=config.model.fine_tune_embeddings,
        text_column=config.data.text_column,
        data={"source": prepared.source, "test_source": prepared.test_source, "rows": prepared.rows},
        device=str(device),
        best_epoch=fitted.best_epoch,
        stopped_early=fitted.stopped_early,
        refit=refit,
        word2vec_cache_hit=prepared.word2vec_cache_hit,
        prepared_cache_hit=prepared.cache_hit,
    )
    if tuned_vectors is not None:
        features = features.with_vectors(tuned_vectors, ratios_=None)
    return SavedModel(meta, prepared.encoder, features, mlp)
