"""The whole job: data -> tokens -> Word2Vec -> pooled vectors -> MLP -> metrics -> saved model directory.

``train`` and ``evaluate_model`` are what the CLI calls; a Python user can call them the same way::

    from sentiment.config import load_config
    from sentiment.pipeline import train
    result = train(load_config("configs/default.yaml", ["training.epochs=3"]))
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sentiment import __version__
from sentiment.config import CONFIG_VERSION, Config, config_from_dict, read_yaml
from sentiment.dataset import LabelledData, Splits, labelled_from_frame, load_splits, read_table
from sentiment.errors import ConfigError, ModelDirError
from sentiment.modeldir import FORMAT, FORMAT_VERSION, commit_dir, new_staging_dir, save_tensors, write_json
from sentiment.paths import remember_last_model
from sentiment.phrases import apply_phrases, learn_phrases
from sentiment.pooling import TokenBags, encode, idf_weights, output_dim, pool, sif_weights
from sentiment.progress import Reporter
from sentiment.tokenizer import TokenizerSettings, tokenize, tokenize_many
from sentiment.word2vec import WordVectors, train_word2vec

TEST_FILE = "test.jsonl.gz"


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
        raise ConfigError("features.normalize applies to frozen features only; unset it or model.fine_tune_embeddings")
    if config.eval.tune_threshold and config.data.val_size == 0:
        raise ConfigError("eval.tune_threshold needs a validation split: set data.val_size > 0")


def _corpus(train_tokens: list[list[str]], unlabeled: list[str], settings: TokenizerSettings, phrases: frozenset):
    """Word2Vec's text: training tokens, then the unlabelled texts tokenised on the fly (never held twice)."""

    def gen() -> Iterator[list[str]]:
        yield from train_tokens
        for text in unlabeled:
            tokens = tokenize(text, settings)
            yield apply_phrases(tokens, phrases) if phrases else tokens

    return gen()


def _word_weights(config: Config, wv: WordVectors, train_bags: TokenBags) -> np.ndarray | None:
    if config.features.pooling == "tfidf":
        return idf_weights(train_bags, len(wv.words))
    if config.features.pooling == "sif":
        return sif_weights(wv.counts, config.features.sif_a)
    return None


def train(
    config: Config,
    output: str | Path | None = None,
    *,
    config_name: str = "model",
    reporter: Reporter | None = None,
) -> TrainOutput:
    """Train, evaluate on the test split and save a model directory (atomically). Returns the metrics."""
    check_compatible(config)
    reporter = reporter or Reporter(quiet=True)
    target = Path(output) if output is not None else Path(config.output_dir) / config_name
    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path exists and is not a directory: {target}")

    with reporter.stage("start-up"):
        import torch

        from sentiment.training import describe_device, resolve_device, seed_everything

        seed_everything(config.seed, config.training.deterministic)
        device = resolve_device(config.device)
    reporter.log(f"device: {describe_device(device)}")

    with reporter.stage("data"):
        splits = load_splits(config.data, config.seed)
    n_val = len(splits.val.labels) if splits.val else 0
    reporter.log(
        f"data: {len(splits.train.labels)} train / {n_val} validation / {len(splits.test.labels)} test rows"
        f" from {splits.source}" + (f"; {len(splits.unlabeled)} unlabelled texts" if splits.unlabeled else "")
    )

    settings = TokenizerSettings.from_config(config.text)
    with reporter.stage("tokenise"):
        train_tok = tokenize_many(splits.train.texts, settings)
        val_tok = tokenize_many(splits.val.texts, settings) if splits.val else []
        test_tok = tokenize_many(splits.test.texts, settings)

    phrases: frozenset[str] = frozenset()
    if config.text.phrases:
        with reporter.stage("phrases"):
            phrases = frozenset(
                learn_phrases(
                    _corpus(train_tok, splits.unlabeled, settings, frozenset()),
                    config.text.phrases_min_count,
                    config.text.phrases_threshold,
                )
            )
            train_tok, val_tok, test_tok = (
                [apply_phrases(t, phrases) for t in toks] for toks in (train_tok, val_tok, test_tok)
            )
        reporter.log(f"phrases: {len(phrases)} learnt")

    w2v = config.word2vec
    with reporter.stage("word2vec"), reporter.bar("Word2Vec epochs", w2v.epochs) as update:
        # Only training (+ unlabelled) text reaches Word2Vec: validation and test text never do.
        wv, cache_hit = train_word2vec(
            _corpus(train_tok, splits.unlabeled, settings, phrases),
            w2v,
            config.seed,
            on_epoch=lambda done, total: update(done),
        )
    reporter.log(
        f"word2vec: {len(wv.words)} words x {wv.vectors.shape[1]} dims"
        + (" (reused from cache)" if cache_hit else f" ({'skip-gram' if w2v.sg else 'CBOW'}, {w2v.epochs} epochs)")
    )

    with reporter.stage("features"):
        index = wv.index()
        train_bags, test_bags = encode(train_tok, index), encode(test_tok, index)
        val_bags = encode(val_tok, index) if splits.val else None
        weights = _word_weights(config, wv, train_bags)
        del train_tok, val_tok, test_tok

    from sentiment.loaders import BagBatches, TensorBatches, make_loader
    from sentiment.model import BagClassifier, SimpleMLP
    from sentiment.training import fit, predict_probs

    tensors: dict[str, np.ndarray] = {}
    input_dim = output_dim(config.features.pooling, wv.vectors.shape[1])
    mlp = SimpleMLP(input_dim, config.model.hidden_dims, config.model.activation, config.model.dropout)
    tcfg = config.training
    with reporter.stage("features"):
        if config.model.fine_tune_embeddings:
            model = BagClassifier(wv.vectors.copy(), mlp, weights, config.model.embedding_dropout)
            datasets = [BagBatches(b, s.labels) if b is not None else None for b, s in
                        ((train_bags, splits.train), (val_bags, splits.val), (test_bags, splits.test))]
            param_groups = [
                {"params": model.embedding.parameters(), "lr": tcfg.embedding_lr or tcfg.lr, "weight_decay": 0.0},
                {"params": model.mlp.parameters()},
            ]
        else:
            feats = [pool(b, wv.vectors, config.features.pooling, weights) if b is not None else None
                     for b in (train_bags, val_bags, test_bags)]
            if config.features.normalize:
                mean = feats[0].mean(axis=0)
                std = feats[0].std(axis=0) + 1e-6
                feats = [(f - mean) / std if f is not None else None for f in feats]
                tensors["feature_mean"], tensors["feature_std"] = mean.astype(np.float32), std.astype(np.float32)
            model = mlp
            datasets = [
                TensorBatches(torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)),
                              torch.as_tensor(s.labels, dtype=torch.float32)) if f is not None else None
                for f, s in zip(feats, (splits.train, splits.val, splits.test), strict=True)
            ]
            param_groups = None
    train_ds, val_ds, test_ds = datasets
    train_loader = make_loader(train_ds, tcfg.batch_size, shuffle=True, seed=config.seed,
                               num_workers=tcfg.num_workers, device=device)
    eval_batch = max(tcfg.batch_size, 1024)
    val_loader = make_loader(val_ds, eval_batch, shuffle=False, seed=0, device=device) if val_ds else None
    test_loader = make_loader(test_ds, eval_batch, shuffle=False, seed=0, device=device)

    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    reporter.log(f"model: {type(model).__name__} {input_dim}-{'-'.join(map(str, config.model.hidden_dims))}-1, "
                 f"{n_params:,} trainable parameters")
    with reporter.stage("training"), reporter.bar("Training epochs", tcfg.epochs) as update:

        def on_epoch(record: Any) -> None:
            update(record.epoch, info=f"loss {record.train_loss:.4f}"
                   + (f" val acc {record.val_accuracy:.4f}" if record.val_accuracy is not None else ""))
            line = f"epoch {record.epoch:>3}/{tcfg.epochs}  loss {record.train_loss:.4f}"
            if record.val_loss is not None:
                line += f"  val_loss {record.val_loss:.4f}  val_acc {record.val_accuracy:.4f}  val_f1 {record.val_f1:.4f}"
            reporter.log(line + f"  ({record.seconds:.1f} s)")

        fitted = fit(model, train_loader, val_loader, tcfg, device, param_groups=param_groups, on_epoch=on_epoch)
    if fitted.stopped_early:
        reporter.log(f"early stopping: best epoch {fitted.best_epoch} ({tcfg.monitor}); its weights restored")

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
            "labels": {"negative": splits.negative_label, "positive": splits.positive_label},
            "threshold": threshold,
            "tokenizer": asdict(settings),
            "phrases": sorted(phrases),
            "pooling": config.features.pooling,
            "activation": config.model.activation,
            "input_dim": input_dim,
            "hidden_dims": config.model.hidden_dims,
            "fine_tuned_embeddings": config.model.fine_tune_embeddings,
            "vocab_size": len(wv.words),
            "device": str(device),
            "best_epoch": fitted.best_epoch,
            "stopped_early": fitted.stopped_early,
            "word2vec_cache_hit": cache_hit,
            "data": {"source": splits.source, "test_source": splits.test_source,
                     "rows": {"train": len(splits.train.labels), "validation": n_val,
                              "test": len(splits.test.labels), "unlabeled": len(splits.unlabeled)}},
        }
        all_metrics = {"test": metrics, "validation": val_metrics, "threshold": threshold}
        model_dir = save_model_dir(target, config, meta, wv.words, tensors, all_metrics, fitted.history_rows(),
                                   splits, test_probs)
    return TrainOutput(model_dir, metrics, val_metrics, fitted.history_rows(), dict(reporter.timings), cache_hit)


def _write_test_rows(path: Path, test: LabelledData, splits: Splits) -> None:
    # JSON lines: any text (newlines, quotes, megabytes) round-trips exactly.
    names = (splits.negative_label, splits.positive_label)
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        for text, y in zip(test.texts, test.labels, strict=True):
            fh.write(json.dumps({"text": text, "label": names[int(y)]}, ensure_ascii=False) + "\n")


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
    splits: Splits,
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
        _write_test_rows(staging / TEST_FILE, splits.test, splits)
        from sentiment.plots import write_plots

        write_plots(staging, history, splits.test.labels, test_probs, metrics["test"])
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
        raise ModelDirError(f"{exc}; the model was saved by an incompatible sentiment version: retrain it") from None


def _read_test_rows(model_dir: Path) -> tuple[list[str], list[str]]:
    path = model_dir / TEST_FILE
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: missing {TEST_FILE}; pass --data FILE to evaluate on a file")
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
            raise ModelDirError(f"{model_dir}/{TEST_FILE}: unknown labels {unknown[:5]}")
        labels = np.array([n == positive for n in names], dtype=np.int64)
        source = f"{model_dir}/{TEST_FILE}"
    else:
        config = load_model_config(model_dir)
        frame = read_table(data, [config.data.text_column, config.data.label_column])
        labelled, _ = labelled_from_frame(frame, config.data, str(data), negative_label=negative)
        texts, labels, source = labelled.texts, labelled.labels, str(data)
    probs, known = predictor.predict_proba(texts)
    metrics = compute_metrics(labels, probs, predictor.threshold if threshold is None else threshold)
    metrics["no_known_words"] = int((known == 0).sum())
    metrics["source"] = source
    metrics["model"] = str(model_dir)
    metrics["labels"] = {"negative": negative, "positive": positive}
    metrics["seconds"] = round(time.perf_counter() - start, 3)
    return metrics
