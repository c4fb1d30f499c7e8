#!/usr/bin/env python
"""Measure the figures of the speed targets and print each one (nothing is hard-coded; every number is timed).

Sections (``--only`` picks some, comma-separated; default: all but ``scale``):

  imports   cold ``import X`` of torch, gensim, sklearn, pandas, numpy (each in a fresh interpreter)
  tokenise  tokenisation of the training reviews (default regex tokeniser and the config's tokeniser)
  pool      vocabulary look-up + averaging of the tokenised reviews (random vectors, the config's size)
  word2vec  Word2Vec on the training reviews with the config's settings: first train vs cache hit
  e2e       ``sentiment train`` end to end on --train + --test (cold Word2Vec cache), accuracy and
            per-stage times; then the same with only an MLP setting changed (Word2Vec from the cache)
  cli       ``sentiment --help`` and a cold ``sentiment predict "one text"`` (fresh process each), batch
            ``sentiment predict --file`` of the --test reviews, and the in-process Predictor throughput
  memory    peak RSS (and time) of ``sentiment train`` with the --unlabeled reviews for Word2Vec
  scale     as ``memory`` on the files repeated ``--scale`` times (written to a temporary directory; the test
            file stays the same), compared with the ``memory`` run

Child processes report their peak RSS through ``os.wait4``. Example::

    SENTIMENT_HOME=/tmp/speed_home .venv/bin/python scripts/benchmark_speed.py --json /tmp/speed.json
    .venv/bin/python scripts/benchmark_speed.py --only memory,scale --scale 3
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/imdb")
SENTIMENT = Path(sys.executable).with_name("sentiment")
SECTIONS = ("imports", "tokenise", "pool", "word2vec", "e2e", "cli", "memory", "scale")
TUTORIAL_SECONDS = 169.0  # the tutorial's recipe on 25,000 + 25,000 reviews (the measurement)

results: dict[str, Any] = {}


def report(
    key: str, value: float, unit: str, target: str = "", ok: bool | None = None, note: str = ""
) -> None:
    results[key] = {"value": round(value, 4), "unit": unit, "target": target, "met": ok, "note": note}
    verdict = "" if ok is None else ("  [met]" if ok else "  [MISSED]")
    extra = f"  (target {target})" if target else ""
    print(f"{key:<42} {value:12.3f} {unit:<8}{extra}{verdict}{'  ' + note if note else ''}", flush=True)


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls (and the result); the CPU time of that call goes to ``last_cpu``."""
    global last_cpu
    times, out = [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, last_cpu = min(times)
    return wall, out


# CPU seconds of the best call of best_of: on a shared machine the wall time includes waiting for a core.
last_cpu = 0.0


# Runs the measured command as its own child: Linux carries a process's peak RSS across fork and exec, so a
# command started straight from this (large) process would report at least this process's RSS. The small
# wrapper forks it instead and writes its wall time, peak RSS and CPU time to a file.
_WRAPPER = """
import os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as fh:
    fh.write(f"{wall} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command; its wall seconds, peak RSS (MB) and user + system CPU seconds, exit code and output."""
    with (
        tempfile.TemporaryFile(mode="w+") as out_file,
        tempfile.TemporaryFile(mode="w+") as err_file,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report_path = Path(tmp) / "usage"
        proc = subprocess.run(
            [sys.executable, "-c", _WRAPPER, str(report_path), *cmd],
            stdout=out_file,
            stderr=err_file,
            env=env,
            cwd=ROOT,
        )
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
        wall, maxrss_kb, cpu = map(float, report_path.read_text().split())
    return {
        "wall": wall,
        "cpu": cpu,
        "rss_mb": maxrss_kb / 1024,  # Linux: kilobytes
        "rc": proc.returncode,
        "stdout": out,
        "stderr": err,
    }


def env_with(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SENTIMENT_HOME"] = str(home)
    env.pop("SENTIMENT_DEBUG", None)
    return env


def data_sets(
    train: Path, test: Path, unlabeled: Path | None = None, extra: list[str] | None = None
) -> list[str]:
    sets = [
        f"data.path={train}",
        f"data.test_path={test}",
        "data.text_column=review",
        "data.label_column=sentiment",
        "data.kaggle_handle=null",
        "data.kaggle_file=null",
    ]
    if unlabeled is not None:
        sets += [f"data.unlabeled_path={unlabeled}", "data.unlabeled_text_column=review"]
    return sets + (extra or [])


def train_cmd(config: Path, output: Path, sets: list[str]) -> list[str]:
    cmd = [str(SENTIMENT), "train", "--config", str(config), "--output", str(output)]
    for item in sets:
        cmd += ["--set", item]
    return cmd


def stage_times(stderr: str) -> dict[str, float]:
    """The 'time per stage' lines the CLI prints when not quiet (best effort: {} if the format changes)."""
    if "time per stage" not in stderr:
        return {}
    block = stderr.split("time per stage", 1)[1]
    return {m[1]: float(m[2]) for m in re.finditer(r"^\s+(\S[\w -]*?)\s+([\d.]+) s$", block, re.MULTILINE)}


def check(run: dict[str, Any], what: str) -> None:
    if run["rc"] != 0:
        sys.stderr.write(run["stderr"][-3000:])
        raise SystemExit(f"{what} failed with exit code {run['rc']}")


def read_texts(path: Path) -> list[str]:
    from sentiment.data import read_table

    return [str(t) for t in read_table(path, ["review"])["review"].tolist()]


# -- sections ------------------------------------------------------------------------------------------------


def bench_imports(args: argparse.Namespace) -> None:
    for module in ("torch", "gensim", "sklearn", "pandas", "numpy"):
        code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        seconds = min(
            float(
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(args.repeat)
        )
        report(f"import {module}", seconds, "s")


def bench_tokenise(args: argparse.Namespace, texts: list[str], config: Any) -> None:
    from sentiment.tokenizer import TokenizerSettings, tokenize_many

    for name, settings in (
        ("default", TokenizerSettings()),
        ("config", TokenizerSettings.from_config(config.text)),
    ):
        seconds, tokens = best_of(args.repeat, lambda s=settings: tokenize_many(texts, s))
        n_tokens = sum(map(len, tokens))
        report(
            f"tokenise {len(texts):,} ({name}: {settings.split})",
            seconds,
            "s",
            "<= 3 s",
            seconds <= 3.0,
            f"{n_tokens:,} tokens, cpu {last_cpu:.2f} s",
        )


def bench_pool(args: argparse.Namespace, texts: list[str], config: Any) -> None:
    import numpy as np

    from sentiment.pooling import pool
    from sentiment.text import encode
    from sentiment.tokenizer import TokenizerSettings, tokenize_many

    tokens = tokenize_many(texts, TokenizerSettings())
    vocab = sorted({t for toks in tokens for t in toks})
    index = {w: i for i, w in enumerate(vocab)}
    dim = config.word2vec.vector_size
    vectors = np.random.default_rng(0).standard_normal((len(vocab), dim)).astype(np.float32)
    enc_s, bags = best_of(args.repeat, lambda: encode(tokens, index))
    enc_cpu = last_cpu
    pool_s, _ = best_of(args.repeat, lambda: pool(bags, vectors, "mean"))
    report(
        f"encode {len(texts):,} (vocabulary look-up)",
        enc_s,
        "s",
        note=f"{len(vocab):,} words, cpu {enc_cpu:.2f} s",
    )
    report(f"pool {len(texts):,} (mean of {dim}-dim vectors)", pool_s, "s", note=f"cpu {last_cpu:.2f} s")
    report(f"encode + pool {len(texts):,}", enc_s + pool_s, "s", "<= 1 s", enc_s + pool_s <= 1.0)


def bench_word2vec(args: argparse.Namespace, texts: list[str], config: Any, work: Path) -> None:
    from sentiment.tokenizer import TokenizerSettings, tokenize_many
    from sentiment.word2vec import resolve_workers, train_word2vec

    tokens = tokenize_many(texts, TokenizerSettings.from_config(config.text))
    os.environ["SENTIMENT_HOME"] = str(work / "w2v_home")  # an empty cache: the first train is a miss
    first, (_, hit1) = best_of(1, lambda: train_word2vec(iter(tokens), config.word2vec, config.seed))
    first_cpu = last_cpu
    second, (_, hit2) = best_of(1, lambda: train_word2vec(iter(tokens), config.word2vec, config.seed))
    workers = resolve_workers(config.word2vec)
    report(
        "word2vec first train",
        first,
        "s",
        note=f"cache hit={hit1}; {workers} workers, {os.cpu_count()} cores; cpu {first_cpu:.1f} s (threads)",
    )
    report("word2vec second (cache)", second, "s", note=f"cache hit={hit2}, cpu {last_cpu:.2f} s")
    report("word2vec first / cached", first / second, "x")


def bench_e2e(args: argparse.Namespace, work: Path) -> Path:
    home = work / "e2e_home"
    sets = data_sets(args.train, args.test)
    model = work / "e2e_model"
    run = run_measured(train_cmd(args.config, model, sets), env_with(home))
    check(run, "sentiment train")
    metrics = json.loads((model / "metrics.json").read_text())["test"]
    stages = stage_times(run["stderr"])
    detail = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
    report(
        "e2e train (cold Word2Vec cache)",
        run["wall"],
        "s",
        f"<= {TUTORIAL_SECONDS / 4:.1f} s (169 s / 4)",
        run["wall"] <= TUTORIAL_SECONDS / 4,
        f"cpu {run['cpu']:.1f} s, rss {run['rss_mb']:.0f} MB",
    )
    if detail:
        print(f"    stages: {detail}")
    report("e2e test accuracy", metrics["accuracy"], "", note=f"n={metrics['n']} test={args.test.name}")
    report(
        "e2e speed-up vs tutorial",
        TUTORIAL_SECONDS / run["wall"],
        "x",
        ">= 4x",
        TUTORIAL_SECONDS / run["wall"] >= 4,
    )
    rerun = run_measured(
        train_cmd(args.config, work / "e2e_model_lr", [*sets, "training.lr=0.002"]), env_with(home)
    )
    check(rerun, "sentiment train (MLP change)")
    meta = json.loads((work / "e2e_model_lr" / "meta.json").read_text())
    stages = stage_times(rerun["stderr"])
    report(
        "e2e re-run, only training.lr changed",
        rerun["wall"],
        "s",
        note=f"word2vec cache hit={meta.get('word2vec_cache_hit')}, prepared-data cache hit="
        f"{meta.get('prepared_cache_hit')}, cpu {rerun['cpu']:.1f} s",
    )
    if stages:
        print("    stages: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    ratio = run["wall"] / rerun["wall"]
    report("e2e first run / re-run", ratio, "x", ">= 5x", ratio >= 5)
    return model


def bench_cli(args: argparse.Namespace, work: Path, model: Path | None) -> None:
    env = env_with(work / "cli_home")
    helps = [run_measured([str(SENTIMENT), "--help"], env) for _ in range(args.repeat + 2)]
    for h in helps:
        check(h, "sentiment --help")
    walls = [h["wall"] for h in helps]
    report(
        "sentiment --help",
        statistics.median(walls),
        "s",
        "<= 0.5 s",
        statistics.median(walls) <= 0.5,
        f"median of {len(walls)}, min {min(walls):.3f}, cpu {min(h['cpu'] for h in helps):.3f} s",
    )
    if model is None:
        model = work / "cli_model"
        sets = data_sets(args.train, args.test, extra=["data.max_rows=2000"])
        check(run_measured(train_cmd(args.config, model, sets), env), "sentiment train (small model)")
    one = [
        run_measured([str(SENTIMENT), "predict", "--model", str(model), "a gripping, beautiful film"], env)
        for _ in range(args.repeat + 2)
    ]
    for p in one:
        check(p, "sentiment predict")
    walls = [p["wall"] for p in one]
    startup = statistics.median(walls)
    report(
        "sentiment predict 'one text' (cold)",
        startup,
        "s",
        "<= 0.7 s",
        startup <= 0.7,
        f"median of {len(walls)}, min {min(walls):.3f}, cpu {min(p['cpu'] for p in one):.3f} s, "
        f"rss {one[0]['rss_mb']:.0f} MB",
    )

    texts = read_texts(args.test)
    lines = work / "reviews.txt"
    lines.write_text("".join(" ".join(t.split()) + "\n" for t in texts), encoding="utf-8")
    batch = [
        run_measured(
            [
                str(SENTIMENT),
                "predict",
                "--model",
                str(model),
                "--file",
                str(lines),
                "--output",
                str(work / "predictions.csv"),
            ],
            env,
        )
        for _ in range(args.repeat)
    ]
    for b in batch:
        check(b, "sentiment predict --file")
    wall = min(b["wall"] for b in batch)
    rate = len(texts) / max(wall - startup, 1e-9)
    cpu_rate = len(texts) / max(min(b["cpu"] for b in batch) - min(p["cpu"] for p in one), 1e-9)
    report(f"predict --file {len(texts):,} (wall)", wall, "s", note=f"rss {batch[0]['rss_mb']:.0f} MB")
    report(
        "predict --file reviews/s after start-up",
        rate,
        "/s",
        ">= 20,000/s",
        rate >= 20_000,
        f"per CPU second: {cpu_rate:,.0f}/s",
    )

    from sentiment.predictor import Predictor

    predictor = Predictor.load(model)
    seconds, _ = best_of(args.repeat, lambda: predictor.predict_proba(texts))
    report(
        "Predictor.predict_proba reviews/s (in-process)",
        len(texts) / seconds,
        "/s",
        note=f"per CPU second: {len(texts) / last_cpu:,.0f}/s",
    )


def bench_memory(
    args: argparse.Namespace, work: Path, train: Path, unlabeled: Path, label: str
) -> dict[str, Any]:
    model = work / f"mem_model_{label}"
    sets = data_sets(train, args.test, unlabeled, args.set)
    run = run_measured(train_cmd(args.config, model, sets), env_with(work / f"mem_home_{label}"))
    check(run, f"sentiment train ({label})")
    stages = stage_times(run["stderr"])
    accuracy = json.loads((model / "metrics.json").read_text())["test"]["accuracy"]
    report(
        f"train with unlabelled ({label}) peak RSS",
        run["rss_mb"],
        "MB",
        "<= 2048 MB" if label == "x1" else "",
        run["rss_mb"] <= 2048 if label == "x1" else None,
        f"wall {run['wall']:.1f} s, cpu {run['cpu']:.1f} s, accuracy {accuracy:.4f}",
    )
    if stages:
        print("    stages: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    shutil.rmtree(model, ignore_errors=True)
    return {**run, "stages": stages}


def repeat_file(source: Path, target: Path, times: int) -> int:
    """``source`` (a CSV, .gz or not) with its data rows written ``times`` times; returns the row count."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8", newline="") as fh:
        header = fh.readline()
        body = fh.read()
    with gzip.open(target, "wt", encoding="utf-8", newline="", compresslevel=1) as out:
        out.write(header)
        for _ in range(times):
            out.write(body if body.endswith("\n") else body + "\n")
    with gzip.open(target, "rt", encoding="utf-8", newline="") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
    return rows


def bench_scale(args: argparse.Namespace, work: Path, base: dict[str, Any] | None) -> None:
    if base is None:
        base = bench_memory(args, work, args.train, args.unlabeled, "x1")
    big = work / f"scale{args.scale}"
    big.mkdir(exist_ok=True)
    train_rows = repeat_file(args.train, big / "train.csv.gz", args.scale)
    unl_rows = repeat_file(args.unlabeled, big / "unlabeled.csv.gz", args.scale)
    print(
        f"    scale x{args.scale}: {train_rows:,} labelled + {unl_rows:,} unlabelled rows"
        " (test file unchanged)"
    )
    run = bench_memory(args, work, big / "train.csv.gz", big / "unlabeled.csv.gz", f"x{args.scale}")
    for key, unit in (("wall", "s"), ("cpu", "s"), ("rss_mb", "MB")):
        ratio = run[key] / base[key]
        report(
            f"scale x{args.scale} / x1 {key}",
            ratio,
            "x",
            f"<= {args.scale}x (linear)",
            ratio <= args.scale,
            f"{base[key]:.1f} -> {run[key]:.1f} {unit}",
        )
    for stage, seconds in run["stages"].items():
        if base["stages"].get(stage):
            print(
                f"    {stage}: {base['stages'][stage]:.1f} -> {seconds:.1f} s "
                f"({seconds / base['stages'][stage]:.1f}x)"
            )
    shutil.rmtree(big, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "tutorial.yaml")
    parser.add_argument("--train", type=Path, default=DATA / "train.csv.gz", help="labelled training file")
    parser.add_argument(
        "--test",
        type=Path,
        default=DATA / "train.csv.gz",
        help="labelled test file (default: the training file, for a 25,000 + 25,000 workload)",
    )
    parser.add_argument("--unlabeled", type=Path, default=DATA / "unlabeled.csv.gz")
    parser.add_argument("--only", default=",".join(s for s in SECTIONS if s != "scale"))
    parser.add_argument(
        "--repeat", type=int, default=3, help="repetitions of the short measurements (best/median)"
    )
    parser.add_argument("--scale", type=int, default=10, help="data multiplier of the scale section")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override of the memory and scale runs (word2vec.epochs=1: a cheaper scale run)",
    )
    parser.add_argument(
        "--keep", type=Path, help="work directory to keep (default: a temporary one, removed)"
    )
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    sys.path.insert(0, str(ROOT / "src"))
    from sentiment.config import load_config

    config = load_config(args.config, data_sets(args.train, args.test))
    work = args.keep or Path(tempfile.mkdtemp(prefix="sentiment-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(
        f"# {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"config {args.config.name}; train {args.train}; test {args.test}"
    )
    try:
        texts = read_texts(args.train) if {"tokenise", "pool", "word2vec"} & set(only) else []
        model = None
        base = None
        for section in only:
            print(f"## {section}", flush=True)
            if section == "imports":
                bench_imports(args)
            elif section == "tokenise":
                bench_tokenise(args, texts, config)
            elif section == "pool":
                bench_pool(args, texts, config)
            elif section == "word2vec":
                bench_word2vec(args, texts, config, work)
            elif section == "e2e":
                model = bench_e2e(args, work)
            elif section == "cli":
                bench_cli(args, work, model)
            elif section == "memory":
                base = bench_memory(args, work, args.train, args.unlabeled, "x1")
            elif section == "scale":
                bench_scale(args, work, base)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"# load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
