"""The whole job: data -> tokens -> Word2Vec -> pooled vectors -> MLP -> metrics -> saved model directory.

``train`` and ``evaluate_model`` are what the CLI calls; a Python user can call them the same way::

    from sentiment.config import load_config
    from sentiment.pipeline import train
    result = train(load_config("configs/default.yaml", ["training.epochs=3"]))
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sentiment import __version__
from sentiment.checkpoint import (
    StopRequest,
    checkpoint_dir,
    config_differences,
    fingerprint,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from sentiment.config import CONFIG_VERSION, Config, config_from_dict, read_yaml
from sentiment.dataset import labelled_from_frame, read_table
from sentiment.errors import CheckpointError, ConfigError, ModelDirError, TrainingInterrupted
from sentiment.modeldir import FORMAT, FORMAT_VERSION, commit_dir, new_staging_dir, save_tensors, write_json
from sentiment.paths import remember_last_model
from sentiment.pooling import TokenBags, idf_weights, nb_weights, output_dim, pool, sif_weights
from sentiment.prepare import TEST_ROWS, Prepared, prepare
from sentiment.progress import Reporter
from sentiment.word2vec import WordVectors


@dataclass
class TrainOutput:
    model_dir: Path
    metrics: dict[str, Any]
    val_metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)
    word2vec_cache_hit: bool = False


def check_compatible(config: Config) -> None:
    if config.model.fine_tune_embeddings and config.features.pooling == "mean_max":
        raise ConfigError("features.pooling=mean_max cannot be combined with model.fine_tune_embeddings=true")
    if config.model.fine_tune_embeddings and config.features.normalize:
        raise ConfigError(
            "features.normalize applies to frozen features only; unset it or model.fine_tune_embeddings"
        )
    if config.eval.tune_threshold and config.data.val_size == 0:
        raise ConfigError("eval.tune_threshold needs a validation split: set data.val_size > 0")
    if config.training.refit and config.data.val_size == 0:
        raise ConfigError("training.refit needs a validation split: set data.val_size > 0")


def _training_summary(fitted: Any, monitor: str, seconds: float) -> str:
    """One line: epochs run, the best epoch and its monitored value, early stopping."""
    epochs = len(fitted.history)
    line = f"training: {epochs} epoch{'s' if epochs != 1 else ''} in {seconds:.1f} s"
    best = next((r for r in fitted.history if r.epoch == fitted.best_epoch), None)
    if best is not None and getattr(best, monitor, None) is not None:
        line += f"; best epoch {best.epoch} ({monitor} {getattr(best, monitor):.4f}), its weights kept"
    if fitted.stopped_early:
        line += "; stopped early"
    return line


def _word_weights(
    config: Config, wv: WordVectors, train_bags: TokenBags, train_labels: np.ndarray
) -> np.ndarray | None:
    features = config.features
    if features.pooling == "tfidf":
        return idf_weights(train_bags, len(wv.words))
    if features.pooling == "sif":
        return sif_weights(wv.counts, features.sif_a)
    if features.pooling == "nb":
        return nb_weights(train_bags, train_labels, len(wv.words), features.nb_alpha, features.nb_floor)
    return None


def train(
    config: Config,
    output: str | Path | None = None,
    *,
    config_name: str = "model",
    reporter: Reporter | None = None,
    resume: bool = False,
) -> TrainOutput:
    """Train, evaluate on the test split and save a model directory (atomically). Returns the metrics.

    SIGINT / SIGTERM during the epochs stop training after the current batch: the state goes to a checkpoint
    next to the model directory (which stays as it was) and ``TrainingInterrupted`` is raised. ``resume=True``
    continues from that checkpoint, to the same result as a run that was never interrupted.
    """
    check_compatible(config)
    reporter = reporter or Reporter(quiet=True)
    target = Path(output) if output is not None else Path(config.output_dir) / config_name
    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path exists and is not a directory: {target}")
    ckpt_dir = checkpoint_dir(target)
    checkpoint = load_checkpoint(ckpt_dir) if resume else None
    if checkpoint is not None:
        changed = config_differences(checkpoint.config, config.to_dict())
        if changed:
            raise CheckpointError(
                f"{ckpt_dir} was made with a different config ({'; '.join(changed[:3])}); resume with the "
                "same config and --set options, or run without --resume to start over"
            )
        where = (
            "the first fit is complete; the refit starts over"
            if checkpoint.fit.finished
            else f"epoch {checkpoint.fit.epoch}, batch {checkpoint.fit.batch}"
        )
        reporter.log(f"resuming from {ckpt_dir}: {where}")
    elif ckpt_dir.exists():
        reporter.warn(f"{ckpt_dir} holds an interrupted run; this one starts over (--resume continues it)")

    with reporter.stage("start-up"):
        import torch

        from sentiment.training import cpu_threads, describe_device, resolve_device, seed_everything

        threads = cpu_threads(config.training.cpu_threads, config.model.fine_tune_embeddings)
        seed_everything(config.seed, config.training.deterministic, threads)
        device = resolve_device(config.device)
    reporter.log(f"device: {describe_device(device)}")

    prepared = prepare(config, reporter, background=True)
    wv = prepared.wv
    train_bags, val_bags, test_bags = (prepared.bags[name] for name in ("train", "val", "test"))
    y_train, y_val, y_test = (prepared.labels[name] for name in ("train", "val", "test"))
    with reporter.stage("features"):
        weights = _word_weights(config, wv, train_bags, y_train)

    from sentiment.loaders import BagBatches, TensorBatches, concat_batches, make_loader
    from sentiment.model import build_classifier
    from sentiment.training import fit, predict_probs

    tensors: dict[str, np.ndarray] = {}
    input_dim = output_dim(config.features.pooling, wv.vectors.shape[1])
    tcfg = config.training
    with reporter.stage("features"):
        model, param_groups = build_classifier(config, wv.vectors, weights, input_dim)
        if config.model.fine_tune_embeddings:
            datasets = [
                BagBatches(b, y) if b is not None else None
                for b, y in ((train_bags, y_train), (val_bags, y_val), (test_bags, y_test))
            ]
        else:
            feats = [
                pool(b, wv.vectors, config.features.pooling, weights) if b is not None else None
                for b in (train_bags, val_bags, test_bags)
            ]
            if config.features.normalize:
                mean = feats[0].mean(axis=0)
                std = feats[0].std(axis=0) + 1e-6
                feats = [(f - mean) / std if f is not None else None for f in feats]
                tensors["feature_mean"], tensors["feature_std"] = (
                    mean.astype(np.float32),
                    std.astype(np.float32),
                )
            datasets = [
                TensorBatches(
                    torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)),
                    torch.as_tensor(y, dtype=torch.float32),
                )
                if f is not None
                else None
                for f, y in zip(feats, (y_train, y_val, y_test), strict=True)
            ]
    train_ds, val_ds, test_ds = datasets
    # What a resumed run must see again: the same word vectors and the same training and validation bags.
    val_arrays = (val_bags.ids, val_bags.offsets, y_val) if val_bags is not None else ()
    # Hashing ~100 MB of arrays costs a noticeable part of a short run: only when a checkpoint needs it.
    data_print = functools.cache(
        lambda: fingerprint(wv.vectors, weights, train_bags.ids, train_bags.offsets, y_train, *val_arrays)
    )
    if checkpoint is not None and checkpoint.fingerprint != data_print():
        raise CheckpointError(
            f"{ckpt_dir}: the training data or word vectors differ from the interrupted run (a changed data "
            "file, or Word2Vec retrained with word2vec.workers != 1); run without --resume to start over"
        )
    train_loader = make_loader(
        train_ds, tcfg.batch_size, shuffle=True, seed=config.seed, num_workers=tcfg.num_workers, device=device
    )
    eval_batch = max(tcfg.batch_size, 1024)
    val_loader = make_loader(val_ds, eval_batch, shuffle=False, seed=0, device=device) if val_ds else None
    test_loader = make_loader(test_ds, eval_batch, shuffle=False, seed=0, device=device)
    train_eval_loader = make_loader(train_ds, eval_batch, shuffle=False, seed=0, device=device)

    def on_epoch(record: Any) -> None:
        # Training accuracy of the epoch's final weights (eval mode, like validation) for the learning curves.
        probs, y = predict_probs(model, train_eval_loader, device)
        record.train_accuracy = float(np.mean((probs >= 0.5) == (y >= 0.5)))
        progress.on_epoch(record)

    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    reporter.log(
        f"model: {type(model).__name__} {input_dim}-{'-'.join(map(str, config.model.hidden_dims))}-1, "
        f"{n_params:,} trainable parameters"
    )
    from sentiment.training import FitStopped

    stop = StopRequest()
    try:
        with reporter.stage("training"), reporter.training(tcfg.epochs) as progress, stop.installed():
            fitted = fit(
                model,
                train_loader,
                val_loader,
                tcfg,
                device,
                param_groups=param_groups,
                on_epoch=on_epoch,
                on_batch=progress.on_batch,
                resume=checkpoint.fit if checkpoint is not None else None,
                should_stop=stop,
                on_checkpoint=lambda st: save_checkpoint(ckpt_dir, config.to_dict(), data_print(), st),
            )
    except FitStopped as exc:
        raise TrainingInterrupted(
            _interrupted_message(exc, stop.signum, tcfg.epochs, ckpt_dir, target), ckpt_dir, stop.signum or 2
        ) from None
    reporter.log(_training_summary(fitted, tcfg.monitor, reporter.timings.get("training", 0.0)))

    from sentiment.evaluate import best_threshold, compute_metrics

    with reporter.stage("evaluate"):
        threshold = config.eval.threshold
        val_metrics = None
        if val_loader is not None:
            val_probs, val_y = predict_probs(model, val_loader, device)
            if config.eval.tune_threshold:
                threshold = best_threshold(val_y, val_probs)
                reporter.log(f"threshold: {threshold:.4f} (best validation accuracy)")
            val_metrics = compute_metrics(val_y, val_probs, threshold)

    refit = None
    if tcfg.refit and val_ds is not None:
        # A fresh model on training + validation rows for the epochs early stopping chose: more data, and
        # the validation figures above stay honest (they come from the first model, which never saw them).
        epochs = max(fitted.best_epoch, 1)
        torch.manual_seed(config.seed)
        model, param_groups = build_classifier(config, wv.vectors, weights, input_dim)
        both = concat_batches(train_ds, val_ds)
        loader = make_loader(
            both, tcfg.batch_size, shuffle=True, seed=config.seed, num_workers=tcfg.num_workers, device=device
        )
        first_phase = fitted.final  # what a stop saves: --resume then skips the first fit, redoes the refit

        def save_first_phase(_: Any) -> None:
            save_checkpoint(ckpt_dir, config.to_dict(), data_print(), first_phase)

        try:
            with reporter.stage("refit"), reporter.training(epochs, "Refit") as progress, stop.installed():
                fit(
                    model,
                    loader,
                    None,
                    tcfg.model_copy(update={"epochs": epochs, "patience": 0}),
                    device,
                    param_groups=param_groups,
                    on_epoch=progress.on_epoch,
                    on_batch=progress.on_batch,
                    should_stop=stop,
                    on_checkpoint=save_first_phase,
                    checkpoint_every=math.inf,
                )
        except FitStopped:
            raise TrainingInterrupted(
                _refit_interrupted_message(stop.signum, ckpt_dir, target), ckpt_dir, stop.signum or 2
            ) from None
        refit = {"epochs": epochs, "rows": len(both)}
        seconds = reporter.timings.get("refit", 0.0)
        reporter.log(
            f"refit: a fresh model on training + validation ({len(both):,} rows) for {epochs} epoch"
            f"{'s' if epochs != 1 else ''} in {seconds:.1f} s; validation metrics are the first model's"
        )

    with reporter.stage("evaluate"):
        test_probs, test_y = predict_probs(model, test_loader, device)
        metrics = compute_metrics(test_y, test_probs, threshold)

    with reporter.stage("save"):
        model = model.cpu()
        if config.model.fine_tune_embeddings:
            tensors["embeddings"] = model.embedding.weight.detach().numpy().astype(np.float32)
            mlp_state = model.mlp.state_dict()
        else:
            tensors["embeddings"] = wv.vectors
            mlp_state = model.state_dict()
        if weights is not None:
            tensors["word_weights"] = weights
        for key, value in mlp_state.items():
            tensors[f"mlp.{key}"] = value.detach().numpy()
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "config_version": CONFIG_VERSION,
            "sentiment_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "labels": {"negative": prepared.negative_label, "positive": prepared.positive_label},
            "threshold": threshold,
            "tokenizer": asdict(prepared.tokenizer),
            "phrases": prepared.phrases,
            "ngrams": config.text.ngrams,
            "pooling": config.features.pooling,
            "activation": config.model.activation,
            "input_dim": input_dim,
            "hidden_dims": config.model.hidden_dims,
            "fine_tuned_embeddings": config.model.fine_tune_embeddings,
            "vocab_size": len(wv.words),
            "device": str(device),
            "best_epoch": fitted.best_epoch,
            "stopped_early": fitted.stopped_early,
            "refit": refit,
            "word2vec_cache_hit": prepared.word2vec_cache_hit,
            "prepared_cache_hit": prepared.cache_hit,
            "data": {
                "source": prepared.source,
                "test_source": prepared.test_source,
                "rows": prepared.rows,
            },
        }
        all_metrics = {"test": metrics, "validation": val_metrics, "threshold": threshold}
        model_dir = save_model_dir(
            target, config, meta, wv.words, tensors, all_metrics, fitted.history_rows(), prepared, test_probs
        )
        remove_checkpoint(ckpt_dir)  # the run is complete: nothing left to resume
    return TrainOutput(
        model_dir,
        metrics,
        val_metrics,
        fitted.history_rows(),
        dict(reporter.timings),
        prepared.word2vec_cache_hit,
    )


def _stop_context(signum: int | None, target: Path) -> tuple[str, str]:
    """The signal's name, and what became of the model directory (an interrupted run never writes it)."""
    import signal

    name = signal.Signals(signum).name if signum else "a signal"
    kept = f"{target} is unchanged" if target.exists() else f"nothing was written to {target}"
    return name, kept


def _interrupted_message(exc: Any, signum: int | None, epochs: int, ckpt_dir: Path, target: Path) -> str:
    name, kept = _stop_context(signum, target)
    state = exc.state
    where = (
        f"after epoch {state.epoch - 1}/{epochs}"
        if state.batch == 0
        else f"in epoch {state.epoch}/{epochs} after batch {state.batch}/{exc.n_batches}"
    )
    best = f"best epoch so far: {state.best_epoch}; " if state.best_epoch else ""
    return f"training interrupted by {name} {where}; {best}state saved in {ckpt_dir}; {kept}"


def _refit_interrupted_message(signum: int | None, ckpt_dir: Path, target: Path) -> str:
    name, kept = _stop_context(signum, target)
    return (
        f"training interrupted by {name} during the refit on training + validation; the finished first fit "
        f"is saved in {ckpt_dir} (a resumed run redoes only the refit); {kept}"
    )


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fields = list(history[0]) if history else ["epoch"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


def save_model_dir(
    target: Path,
    config: Config,
    meta: dict[str, Any],
    vocab: list[str],
    tensors: dict[str, np.ndarray],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    prepared: Prepared,
    test_probs: np.ndarray,
) -> Path:
    """Write every file under a temporary name, then move the directory into place in one step."""
    staging = new_staging_dir(target)
    try:
        (staging / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
        write_json(staging / "meta.json", meta)
        write_json(staging / "vocab.json", vocab)
        save_tensors(staging / "model.safetensors", tensors, metadata={"format": FORMAT})
        write_json(staging / "metrics.json", metrics)
        _write_history(staging / "history.csv", history)
        prepared.write_test_rows(staging / TEST_ROWS)
        from sentiment.plots import write_plots

        write_plots(
            staging,
            history,
            prepared.labels["test"],
            test_probs,
            metrics["test"],
            best_epoch=meta.get("best_epoch"),
            labels=(prepared.negative_label, prepared.positive_label),
        )
        commit_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    remember_last_model(target)
    return target


def load_model_config(model_dir: Path) -> Config:
    path = model_dir / "config.yaml"
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: missing config.yaml; it is not a complete model directory")
    try:
        return config_from_dict(read_yaml(path), source=str(path))
    except ConfigError as exc:
        raise ModelDirError(
            f"{exc}; the model was saved by an incompatible sentiment version: retrain it"
        ) from None


def _read_test_rows(model_dir: Path) -> tuple[list[str], list[str]]:
    path = model_dir / TEST_ROWS
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: missing {TEST_ROWS}; pass --data FILE to evaluate on a file")
    texts, labels = [], []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(row["label"])
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: unreadable ({type(exc).__name__}); pass --data FILE instead") from None
    return texts, labels


def evaluate_model(
    model_dir: str | Path, data: str | Path | None = None, threshold: float | None = None
) -> dict[str, Any]:
    """Metrics of a saved model on its recorded test split, or on ``data`` (same column settings)."""
    from sentiment.evaluate import compute_metrics
    from sentiment.predictor import Predictor

    model_dir = Path(model_dir)
    start = time.perf_counter()
    predictor = Predictor.load(model_dir)
    negative, positive = predictor.labels
    if data is None:
        texts, names = _read_test_rows(model_dir)
        unknown = sorted(set(names) - {negative, positive})
        if unknown:
            raise ModelDirError(f"{model_dir}/{TEST_ROWS}: unknown labels {unknown[:5]}")
        labels = np.array([n == positive for n in names], dtype=np.int64)
        source = f"{model_dir}/{TEST_ROWS}"
    else:
        config = load_model_config(model_dir)
        frame = read_table(data, [config.data.text_column, config.data.label_column])
        labelled, _ = labelled_from_frame(frame, config.data, str(data), negative_label=negative)
        texts, labels, source = labelled.texts, labelled.labels, str(data)
    probs, known = predictor.predict_proba(texts, workers=0)
    metrics = compute_metrics(labels, probs, predictor.threshold if threshold is None else threshold)
    metrics["no_known_words"] = int((known == 0).sum())
    metrics["source"] = source
    metrics["model"] = str(model_dir)
    metrics["labels"] = {"negative": negative, "positive": positive}
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    return metrics
