"""sentiment tune: the search space, trials and pruning, caches, seeds, timeout, resume, parallel workers
and a study shared through PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import SCRIPTS, load_script
from sentiment.config import SHIPPED_SPACE, load_config
from sentiment.errors import ConfigError
from sentiment.space import load_space
from sentiment.tune import JOURNAL_FILE, TrialRow, TrialTable, TuneSettings, tune

SPACE = """\
training.lr: {low: 1.0e-3, high: 0.05, log: true}
model.hidden_dims: {choices: [[8], [16, 8]]}
training.batch_size: {low: 16, high: 64, step: 16}
"""


def _space(tmp_path: Path, text: str = SPACE, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(output: Path) -> list[dict[str, str]]:
    with (output / "trials.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _study(output: Path, name: str = "tune") -> optuna.Study:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(output / JOURNAL_FILE)))
    return optuna.load_study(study_name=name, storage=storage)


# -- the search space -------------------------------------------------------------------------------------


def test_space_kinds_and_nested_sections(tmp_path: Path, tiny_config: Path) -> None:
    path = _space(
        tmp_path,
        "training:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n  epochs: {low: 5, high: 30, step: 5}\n"
        "model.hidden_dims: {choices: [[64], [128, 64]]}\nmodel.activation: {choices: [relu, gelu]}\n"
        "model.dropout: {low: 0, high: 0.5}\n",
    )
    params = {p.key: p for p in load_space(path, tiny_config)}
    assert list(params) == [
        "training.lr",
        "training.epochs",
        "model.hidden_dims",
        "model.activation",
        "model.dropout",
    ]
    lr, epochs, dims = params["training.lr"], params["training.epochs"], params["model.hidden_dims"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-4, 1e-2, True)
    assert (epochs.kind, epochs.low, epochs.high, epochs.step) == ("int", 5, 30, 5)
    assert params["model.dropout"].kind == "float"  # an int bound of a float setting is a float range
    # lists are not values Optuna stores: they go as JSON text and come back as lists
    assert dims.encoded and dims.options == ["[64]", "[128, 64]"] and dims.decode("[128, 64]") == [128, 64]
    assert not params["model.activation"].encoded


def test_shipped_space_fits_the_shipped_configs() -> None:
    for config in ("default", "tutorial", "imdb"):
        keys = [p.key for p in load_space(SHIPPED_SPACE, config)]
        assert "training.lr" in keys and "model.hidden_dims" in keys
    # a search space is not a training config: `config list` leaves it out
    from sentiment.config import shipped_configs

    assert "space" not in shipped_configs()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training.lrr: {low: 0.1, high: 0.2}", "unknown key 'training.lrr' (did you mean 'training.lr'?)"),
        ("training: {low: 0.1, high: 0.2}", "a section, not a setting 'training'"),
        ("training.lr: 0.01", "training.lr: expected a range or choices"),
        ("training.lr: {lo: 0.1, high: 0.2}", "training.lr: unknown field 'lo'"),
        ("training.lr: {low: 0.1}", "training.lr: a range needs both low and high"),
        ("training.lr: {low: 0.1, high: 0.01}", "training.lr: low must be below high"),
        ("training.lr: {low: 0.1, high: 0.1}", "training.lr: low must be below high"),
        (
            "training.weight_decay: {low: 0, high: 0.1, log: true}",
            "training.weight_decay: a log range needs low > 0",
        ),
        ("training.lr: {low: a, high: 0.1}", "training.lr: low must be a number"),
        ("training.lr: {low: 0.1, high: 0.2, log: yes please}", "training.lr: log must be true or false"),
        ("training.lr: {low: 0.1, high: 0.2, step: -1}", "training.lr: step must be > 0"),
        ("training.epochs: {low: 1.5, high: 10}", "training.epochs: an int setting needs whole-number"),
        ("training.lr_schedule: {low: 1, high: 2}", "training.lr_schedule: not a number setting"),
        ("model.hidden_dims: {choices: []}", "model.hidden_dims: choices must be a non-empty list"),
        ("model.hidden_dims: {choices: [8, 16]}", "model.hidden_dims: choice 8 is not a valid value"),
        ("model.activation: {choices: [relu, relu]}", "model.activation: choices repeat a value"),
        (
            "model.activation: {choices: [relu, swish]}",
            'model.activation: choice "swish" is not a valid value',
        ),
        ("model.dropout: {low: 0.1, high: 1.0}", "model.dropout: high 1 is not a valid value"),
        (
            "model.dropout: {low: 0.1, high: 0.5, choices: [0.1]}",
            "model.dropout: give a range (low, high) or choices",
        ),
        ("training.refit: {choices: [true, false]}", "training.refit: not searchable"),
        ("", "no settings to search"),
    ],
)
def test_space_errors_name_the_key(tmp_path: Path, tiny_config: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_space(_space(tmp_path, text), tiny_config)
    assert message in str(err.value)


def test_cli_space_errors_exit_2(cli, tmp_path: Path, tiny_config: Path) -> None:
    bad = _space(tmp_path, "training.lr: {low: 0.01, high: 0.001}")
    result = cli(["tune", "-c", tiny_config, "--space", bad, "-o", tmp_path / "out"])
    assert result.exit_code == 2 and "training.lr: low must be below high" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing starts on bad input
    both = cli(["tune", "-c", tiny_config, "--space", _space(tmp_path), "--set", "training.lr=0.01"])
    assert both.exit_code == 2 and "training.lr is both searched and fixed with --set" in both.stderr
    missing = cli(["tune", "-c", tiny_config, "--space", tmp_path / "nowhere.yaml"])
    assert missing.exit_code == 2 and "search space not found" in missing.stderr
    metric = cli(["tune", "-c", tiny_config, "--space", _space(tmp_path), "--metric", "auc"])
    assert metric.exit_code == 2 and "unknown --metric 'auc'" in metric.stderr
    no_val = cli(["tune", "-c", tiny_config, "--space", _space(tmp_path), "--set", "data.val_size=0"])
    assert no_val.exit_code == 2 and "data.val_size > 0" in no_val.stderr


# -- a tune end to end ------------------------------------------------------------------------------------


def test_tune_writes_results_and_best_yaml_trains_to_the_same_validation_figure(
    cli, tmp_path: Path, tiny_config: Path
) -> None:
    out = tmp_path / "out"
    result = cli(["tune", "-c", tiny_config, "--space", _space(tmp_path), "-n", "4", "-o", out])
    assert result.exit_code == 0, result.stderr
    for name in ("best.yaml", "trials.csv", "history.png", "importance.png", "tune.json", JOURNAL_FILE):
        assert (out / name).is_file(), name
    lines = [line for line in result.stdout.splitlines() if line.startswith("trial ")]
    assert len(lines) == 4 and "accuracy" in lines[0]  # a line per trial as it finished (no terminal)
    rows = _rows(out)
    assert [r["trial"] for r in rows] == ["0", "1", "2", "3"]
    summary = json.loads((out / "tune.json").read_text())
    best = summary["best"]
    complete = [r for r in rows if r["state"] == "complete"]
    assert best["value"] == max(float(r["validation_accuracy"]) for r in complete)
    # best.yaml is a complete config: the base config with the best trial's values, trainable as it is
    config = load_config(out / "best.yaml")
    assert config.training.lr == best["params"]["training.lr"]
    assert config.model.hidden_dims == best["params"]["model.hidden_dims"]
    assert config.training.batch_size == best["params"]["training.batch_size"]
    assert config.word2vec.vector_size == 16  # the rest is the tuned config's
    trained = cli(["train", "--config", out / "best.yaml", "-o", tmp_path / "model", "--json"])
    assert trained.exit_code == 0, trained.stderr
    # the same seed and settings: train's validation figure is the one the trial reported
    assert json.loads(trained.stdout)["validation"]["accuracy"] == pytest.approx(best["value"], abs=1e-12)
    assert "train the best settings: sentiment train --config" in result.stdout
    # trials write no model directory and leave no checkpoint
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["best.yaml", "trials.csv", "history.png", "importance.png", "tune.json", JOURNAL_FILE]
    )
    assert not list(tmp_path.rglob("*.checkpoint")) and not (tmp_path / "runs").exists()


def test_json_summary_and_rerun_without_resume_is_refused(cli, tmp_path: Path, tiny_config: Path) -> None:
    out = tmp_path / "out"
    space = _space(tmp_path)
    result = cli(
        ["tune", "-c", tiny_config, "--space", space, "-n", "2", "-o", out, "--json", "--metric", "loss"]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout is the JSON alone; the trial lines went to stderr
    assert summary["direction"] == "minimize" and summary["metric"] == "loss"
    assert summary["trials"] == {"complete": 2, "pruned": 0, "failed": 0}
    assert summary["best"]["value"] == min(float(r["validation_loss"]) for r in _rows(out))
    assert "trial   0" in result.stderr
    again = cli(["tune", "-c", tiny_config, "--space", space, "-n", "2", "-o", out, "--metric", "loss"])
    assert again.exit_code == 2 and "already holds a tune (2 trials): --resume continues it" in again.stderr
    nothing = cli(["tune", "-c", tiny_config, "--space", space, "-o", tmp_path / "empty", "--resume"])
    assert nothing.exit_code == 2 and "nothing to resume" in nothing.stderr


def test_resume_continues_to_the_budget_and_refuses_another_search(
    cli, tmp_path: Path, tiny_config: Path
) -> None:
    out, space = tmp_path / "out", _space(tmp_path)
    assert cli(["tune", "-c", tiny_config, "--space", space, "-n", "2", "-o", out]).exit_code == 0
    resumed = cli(["tune", "-c", tiny_config, "--space", space, "-n", "5", "-o", out, "--resume"])
    assert resumed.exit_code == 0, resumed.stderr
    assert "2 trials so far" in resumed.stderr
    study = _study(out)
    assert len(study.trials) == 5 and {t.state for t in study.trials} <= {
        TrialState.COMPLETE,
        TrialState.PRUNED,
    }
    # a restarted sampler does not propose the first trials' settings again
    params = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(set(params)) == 5
    other = _space(tmp_path, SPACE + "model.dropout: {low: 0.0, high: 0.5}\n", "other.yaml")
    refused = cli(["tune", "-c", tiny_config, "--space", other, "-n", "6", "-o", out, "--resume"])
    assert refused.exit_code == 2 and "searches another space (it differs in model.dropout)" in refused.stderr
    metric = cli(
        ["tune", "-c", tiny_config, "--space", space, "-n", "6", "-o", out, "--resume", "--metric", "f1"]
    )
    assert metric.exit_code == 2 and "compares validation accuracy, not f1" in metric.stderr
    changed = cli(
        ["tune", "-c", tiny_config, "--space", space, "-o", out, "--resume", "--set", "training.epochs=3"]
    )
    assert changed.exit_code == 2 and "training.epochs: 10 -> 3" in changed.stderr


def test_a_storage_url_is_shared_by_name_and_its_password_never_shown(
    cli, tmp_path: Path, tiny_config: Path
) -> None:
    space, url = _space(tmp_path), f"sqlite:///{tmp_path / 'tune.db'}"
    common = ["tune", "-c", tiny_config, "--space", space, "--storage", url, "--study", "mine"]
    assert cli([*common, "-n", "2", "-o", tmp_path / "a"]).exit_code == 0
    joined = cli([*common, "-n", "3", "-o", tmp_path / "b"])  # same storage and study: no --resume needed
    assert joined.exit_code == 0, joined.stderr
    assert "study 'mine' in sqlite:///" in joined.stderr and "2 trials so far" in joined.stderr
    assert [r["trial"] for r in _rows(tmp_path / "b")] == ["0", "1", "2"]
    pytest.importorskip("psycopg")
    refused = cli(
        ["tune", "-c", tiny_config, "--space", space, "--storage", "postgresql://me:s3cret@127.0.0.1:1/db"]
    )
    assert refused.exit_code == 2 and "postgresql://me:***@127.0.0.1:1/db: cannot open it" in refused.stderr
    assert "s3cret" not in refused.stderr + refused.stdout


def test_budget_is_the_studys_a_surplus_trial_is_dropped_and_orphans_are_failed(
    tmp_path: Path, tiny_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from sentiment import tune as tuning

    settings = TuneSettings(str(tiny_config), _space(tmp_path), output=tmp_path / "out", trials=2)
    plan = tuning.make_plan(settings)
    storage = tuning.open_storage(plan)
    study = tuning.open_study(plan, storage, tuning.Reporter(quiet=True))
    dead = subprocess.Popen(["true"])
    dead.wait()
    others = [study.ask(), study.ask()]  # two trials of other processes, one of them dead
    others[0].set_user_attr("worker", {"host": socket.gethostname(), "process": f"{dead.pid}:1"})
    others[1].set_user_attr("worker", {"host": "elsewhere", "process": "1:1"})
    unclaimed = study.ask()  # a process killed before it recorded itself: failed only once that is long past
    # as if this process had looked before the others asked: it asks, sees the budget full, drops its trial
    real = tuning._taken
    monkeypatch.setattr(
        tuning, "_taken", lambda study, below=None: 0 if below is None else real(study, below)
    )
    tuning.run_worker(plan, 0, None, storage, tuning.Reporter(quiet=True))
    surplus = study.trials[3]
    assert (
        surplus.state == TrialState.FAIL and surplus.user_attrs["surplus"] and not surplus.intermediate_values
    )
    assert tuning.fail_orphaned_trials(study, storage) == [0]  # ours and dead; the other machine's stays
    assert [t.state for t in study.trials[:3]] == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING]
    assert study.trials[0].user_attrs["interrupted"] is True
    monkeypatch.setattr(tuning, "UNCLAIMED_SECONDS", 0.0)
    assert tuning.fail_orphaned_trials(study, storage) == [unclaimed.number]
    assert study.trials[1].state == TrialState.RUNNING


def test_same_seed_same_trials(tmp_path: Path, tiny_config: Path) -> None:
    space = _space(tmp_path)

    def params(name: str, seed: int | None = None) -> list[dict]:
        settings = TuneSettings(
            str(tiny_config), space, output=tmp_path / name, trials=4, seed=seed, prune=False
        )
        tune(settings)
        return [t.params for t in _study(tmp_path / name).trials]

    first = params("a")
    assert params("b") == first  # the config's seed
    assert params("c", seed=12345) != first


def test_a_pruned_trial_stops_training_and_writes_nothing(tmp_path: Path, tiny_config: Path) -> None:
    # one hopeless learning rate among good ones: once a good trial has finished, the pruner stops
    # the hopeless ones at their first epoch
    space = _space(tmp_path, "training.lr: {choices: [0.05, 1.0e-6]}\n")
    out = tmp_path / "out"
    settings = TuneSettings(
        str(tiny_config), space, output=out, trials=6, prune_startup_trials=1, prune_warmup_epochs=0
    )
    result = tune(settings)
    study = _study(out)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and result.counts["pruned"] == len(pruned)
    for trial in pruned:
        assert trial.params["training.lr"] == 1e-6
        # stopped after its first epoch of 10: one figure reported, one epoch trained
        assert list(trial.intermediate_values) == [1] and trial.user_attrs["epochs"] == 1
        assert trial.user_attrs["word2vec_cache_hit"] is True  # recorded before the fit, pruned or not
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE and t.params["training.lr"] == 0.05]
    assert complete and all(len(t.intermediate_values) == t.user_attrs["epochs"] > 1 for t in complete)
    assert {r["state"] for r in _rows(out)} >= {"pruned", "complete"}
    assert not list(tmp_path.rglob("*.checkpoint")) and not (tmp_path / "runs").exists()


def test_an_exception_from_the_epoch_hook_stops_the_fit_at_once(tiny_config: Path) -> None:
    from sentiment.pipeline import fit_and_validate

    seen = []

    class Stop(Exception):
        pass

    def hook(record) -> None:
        seen.append(record.epoch)
        if record.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        fit_and_validate(load_config(tiny_config), on_epoch=hook)
    assert seen == [1, 2]


def test_trials_reuse_word2vec_unless_its_settings_change(tmp_path: Path, tiny_config: Path) -> None:
    space = _space(tmp_path, "word2vec.window: {choices: [2, 3]}\ntraining.lr: {low: 0.005, high: 0.05}\n")
    out = tmp_path / "out"
    tune(TuneSettings(str(tiny_config), space, output=out, trials=5, prune=False))
    seen = set()
    rows = _rows(out)
    for row in rows:
        window = row["word2vec.window"]
        # Word2Vec is trained for the first trial with a window, then read from its cache
        assert row["word2vec_cache_hit"] == str(window in seen), rows
        seen.add(window)
    assert len(rows) == 5


def test_timeout_starts_no_trial_after_it_and_still_writes_results(tmp_path: Path, tiny_config: Path) -> None:
    out = tmp_path / "out"
    settings = TuneSettings(str(tiny_config), _space(tmp_path), output=out, trials=500, timeout=3.0)
    start = time.time()
    result = tune(settings)
    elapsed = time.time() - start
    trials = _study(out).trials
    assert 1 <= len(trials) < 500
    longest = max(t.duration.total_seconds() for t in trials)
    deadline = start + 3.0
    assert all(t.datetime_start.timestamp() <= deadline + 0.5 for t in trials)  # none started after it
    assert elapsed <= 3.0 + longest + 15.0  # it stopped within one trial (and the results' writing) of it
    assert (out / "trials.csv").is_file() and (out / "best.yaml").is_file() and result.best is not None


def test_macro_f1_wants_more_than_two_labels(cli, tmp_path: Path, tiny_config: Path) -> None:
    space = _space(tmp_path, "training.lr: {low: 0.005, high: 0.05}\n")
    result = cli(
        ["tune", "-c", tiny_config, "--space", space, "-n", "2", "--metric", "macro_f1", "-o", tmp_path / "o"]
    )
    assert result.exit_code == 2 and "--metric macro_f1 is for more than two labels" in result.stderr


def test_trial_table_plain_lines() -> None:
    space = load_space(SHIPPED_SPACE, "default")
    stream = io.StringIO()
    table = TrialTable(space, "accuracy", "maximize", stream)
    table.add(TrialRow(0, "complete", 0.8, {"training.lr": 0.001, "model.hidden_dims": [64]}, 7, 3.25))
    table.add(TrialRow(1, "pruned", 0.6, {"training.lr": 0.002}, 1, 0.5))
    table.add(TrialRow(2, "complete", 0.9, {"training.lr": 0.003}, 9, 4.0))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("trial   0  complete") and "accuracy 0.8000 *" in lines[0]
    assert "lr=0.001  hidden_dims=[64]" in lines[0] and "7 epochs" in lines[0]
    assert "pruned" in lines[1] and "best 0.8000" in lines[1] and "*" not in lines[1]
    assert "accuracy 0.9000 *  best 0.9000" in lines[2]
    assert "\x1b" not in stream.getvalue()  # no control codes off a terminal


def test_cli_imports_no_optuna() -> None:
    code = "import sys, sentiment.cli; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- processes: workers, a killed tune, PostgreSQL -----------------------------------------------------------

SENTIMENT = [sys.executable, "-m", "sentiment"]


@pytest.mark.slow
def test_jobs_run_worker_processes_sharing_the_study(cli, tmp_path: Path, tiny_config: Path) -> None:
    out = tmp_path / "out"
    result = cli(["tune", "-c", tiny_config, "--space", _space(tmp_path), "-n", "4", "-j", "2", "-o", out])
    assert result.exit_code == 0, result.stderr
    trials = _study(out).trials
    finished = [t for t in trials if not t.user_attrs.get("surplus")]
    assert len(finished) == 4 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in finished)
    workers = {t.user_attrs["worker"]["index"] for t in finished}
    processes = {t.user_attrs["worker"]["process"] for t in finished}
    assert workers == {0, 1} and len(processes) == 2  # two processes, each with trials of its own
    assert len(_rows(out)) == 4 and (out / "best.yaml").is_file()


def _slow_config(tmp_path: Path, tiny_config: Path) -> Path:
    """The tiny config with trials slow enough to catch one mid-way: more epochs, no early stopping."""
    config = yaml.safe_load(tiny_config.read_text())
    config["training"].update({"epochs": 60, "patience": 0})
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _wait_for(predicate, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


@pytest.mark.slow
def test_a_killed_tune_resumes_to_the_budget(tmp_path: Path, tiny_config: Path) -> None:
    config, space, out = _slow_config(tmp_path, tiny_config), _space(tmp_path), tmp_path / "out"
    args = ["tune", "-c", str(config), "--space", str(space), "-n", "4", "-o", str(out), "--no-prune"]
    process = subprocess.Popen([*SENTIMENT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def two_done_one_running() -> bool:
            if not (out / JOURNAL_FILE).exists():
                return False
            trials = _study(out).trials
            done = sum(t.state == TrialState.COMPLETE for t in trials)
            # a running trial that has recorded its process: killed before that, it waits UNCLAIMED_SECONDS
            return done >= 2 and any(
                t.state == TrialState.RUNNING and "worker" in t.user_attrs for t in trials
            )

        _wait_for(two_done_one_running)
        process.send_signal(signal.SIGKILL)  # no clean-up at all: the running trial stays "running"
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    killed = [t.number for t in _study(out).trials if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    resumed = subprocess.run([*SENTIMENT, *args, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trials {killed[0]} were left running by a process that is gone" in resumed.stderr
    trials = _study(out).trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4  # the budget, the killed trial redone
    orphan = trials[killed[0]]
    assert orphan.state == TrialState.FAIL and orphan.user_attrs["interrupted"] is True
    assert [r["state"] for r in _rows(out)].count("interrupted") == 1


@pytest.mark.slow
def test_ctrl_c_stops_after_the_batch_writes_results_and_prints_the_resume_command(
    tmp_path: Path, tiny_config: Path
) -> None:
    config, space, out = _slow_config(tmp_path, tiny_config), _space(tmp_path), tmp_path / "out"
    args = ["tune", "-c", str(config), "--space", str(space), "-n", "4", "-o", str(out), "--no-prune"]
    process = subprocess.Popen([*SENTIMENT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(
            lambda: (out / JOURNAL_FILE).exists() and any(t.intermediate_values for t in _study(out).trials)
        )
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "--resume" in stderr.splitlines()[-1] and (out / "trials.csv").is_file()
    assert "interrupted" in [r["state"] for r in _rows(out)]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server's URL: SENTIMENT_TEST_POSTGRES_URL (.ci/run starts one), else a server started here
    from the installed binaries; the test skips when neither can be had."""
    pytest.importorskip("psycopg", reason="no PostgreSQL driver (pip install 'psycopg[binary]')")
    url = os.environ.get("SENTIMENT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    server = load_script("postgres_test_server")
    directory = Path(
        tempfile.mkdtemp(prefix="sentiment-pg-")
    )  # outside pytest's 0700 tree: the server user's
    try:
        url = server.start(directory)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.skip(f"no PostgreSQL server could be started: {exc}")
    try:
        yield url
    finally:
        server.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_processes_pointed_at_one_postgresql_url_share_the_study(
    postgres: str, tmp_path: Path, tiny_config: Path
) -> None:
    import psycopg

    try:
        psycopg.connect(postgres, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {postgres} does not answer: {exc}")
    config, space = _slow_config(tmp_path, tiny_config), _space(tmp_path)
    config.write_text(config.read_text().replace("epochs: 60", "epochs: 25"))
    study = f"test-{uuid.uuid4().hex[:8]}"  # a new study in a server other runs may share
    common = ["tune", "-c", str(config), "--space", str(space), "-n", "6", "--no-prune"]
    common += ["--storage", postgres, "--study", study]
    processes = [
        subprocess.Popen(
            [*SENTIMENT, *common, "-o", str(tmp_path / name)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    stored = optuna.load_study(study_name=study, storage=_rdb(postgres)).trials
    trials = [t for t in stored if not t.user_attrs.get("surplus")]
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"]["process"] for t in trials}) == 2  # both processes ran trials of it
    # each process wrote the results of the study as it stood when it stopped: the last one, all of it
    assert max(len(_rows(tmp_path / name)) for name in ("a", "b")) == 6


def _rdb(url: str):
    from optuna.storages import RDBStorage

    return RDBStorage(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_postgres_script_reports_missing_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server = load_script("postgres_test_server")
    monkeypatch.setattr(server, "binaries", lambda: None)
    assert (SCRIPTS / "postgres_test_server.py").is_file()
    with pytest.raises(RuntimeError, match="no PostgreSQL server binaries"):
        server.start(tmp_path / "pg")
