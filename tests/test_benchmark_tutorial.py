"""The tutorial speed benchmark runs end to end on tiny synthetic data, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED, load_script, write_reviews


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmark_tutorial")


def test_transcription_keeps_the_tutorials_recipe(bench) -> None:
    code = bench.TUTORIAL_CODE
    compile(code, "tutorial_scratch.py", "exec")  # indentation restored: it parses
    for line in (
        "w2v_model = Word2Vec(sentences, vector_size=50, window=5, min_count=1, workers=4)",
        "return torch.tensor(vecs).mean(dim=0)",
        "train_size = int(0.8 * len(X))",
        "train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)",
        "def __init__(self, input_dim=50, hidden_dim=32, output_dim=1):",
        "criterion = nn.BCELoss()",
        "optimizer = optim.Adam(model.parameters(), lr=0.001)",
        "epochs = 5",
        "f1 = f1_score(y_true, y_pred)",
    ):
        assert line in code
    assert "import kagglehub" not in code and "pd.read_csv(data_path)" in code
    reference = SHARED / "reference" / "tutorial.txt"
    if reference.is_file():  # every code line of the tutorial from section 2 on, in order
        text = reference.read_text(encoding="utf-8").splitlines()
        start = text.index("from gensim.models import Word2Vec")
        wanted = [
            line.strip()
            .replace("df['cleaned_review']", "df[text_column]")
            .replace("df['sentiment']", "df[label_column]")
            for line in text[start:]
            if line.strip().startswith(
                ("vecs", "return", "X ", "y ", "train_", "model", "loss", "acc ", "f1 ")
            )
        ]
        got = [line.strip() for line in code.splitlines()]
        position = 0
        for line in wanted:
            assert line in got[position:], line
            position = got.index(line, position) + 1


@pytest.mark.slow
def test_tutorial_script_runs_and_prints_its_figures(bench, tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv", n=200, seed=1, text_column="cleaned_review")
    script = bench.write_tutorial_script(tmp_path / "scratch.py")
    done = subprocess.run(
        [sys.executable, str(script), str(data), "cleaned_review", "sentiment"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("Epoch 1/5, Loss: ") and lines[4].startswith("Epoch 5/5")
    assert lines[5].startswith("Accuracy : ")
    figures = json.loads(lines[-1])
    assert set(figures) == {"accuracy", "precision", "recall", "f1"}
    assert all(0.0 <= value <= 1.0 for value in figures.values())
    assert float(lines[5].split(":")[1]) == pytest.approx(figures["accuracy"], abs=1e-4)


@pytest.mark.slow
def test_one_repeat_end_to_end(bench, tmp_path: Path) -> None:
    data = write_reviews(tmp_path / "reviews.csv", n=300, seed=2)
    out = tmp_path / "speed.json"
    lines: list[str] = []
    result = bench.main(["--data", str(data), "--repeats", "1", "--json", str(out)], log=lines.append)
    assert result.text_column == "review"  # picked from the header
    assert [r.side for r in result.runs] == ["tutorial", "ours"]
    tutorial, ours = result.runs
    assert tutorial.seconds > 0 and ours.seconds > 0
    assert result.ratio == pytest.approx(tutorial.seconds / ours.seconds)
    for run in result.runs:  # both score the last 60 of the 300 rows (20 Adam steps: near chance here)
        assert 0.0 <= run.accuracy <= 1.0 and 0.0 <= run.f1 <= 1.0
        assert run.accuracy * 60 == pytest.approx(round(run.accuracy * 60))
    saved = json.loads(out.read_text())
    assert saved["ratio"] == pytest.approx(result.ratio)
    assert saved["tutorial"]["seconds"] == [tutorial.seconds] and saved["ours"]["seconds"] == [ours.seconds]
    assert saved["meets_target"] == (result.ratio >= 4.0)
    assert lines[-1] == (
        f"ours {ours.seconds:.1f} s vs tutorial {tutorial.seconds:.1f} s: {result.ratio:.2f}x (target 4x)"
    )


def test_ours_reads_accuracy_from_metrics_json(bench, tmp_path: Path, monkeypatch) -> None:
    output = tmp_path / "model"

    def fake_run(command, env, **kwargs):
        assert command[:4] == [sys.executable, "-m", "sentiment", "train"]
        assert "data.text_column=review" in command and command[-3:] == ["-o", str(output), "-q"]
        assert Path(env["SENTIMENT_HOME"]).is_dir() and not any(Path(env["SENTIMENT_HOME"]).iterdir())
        output.mkdir()
        metrics = {"test": {"accuracy": 0.75, "f1": 0.7, "precision": 0.8, "recall": 0.6}, "validation": None}
        (output / "metrics.json").write_text(json.dumps(metrics))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    run = bench.run_ours(tmp_path / "data.csv", "review", "sentiment", output)
    assert (run.side, run.accuracy, run.f1, run.precision) == ("ours", 0.75, 0.7, 0.8) and run.seconds > 0


def test_ratio_is_of_the_medians(bench) -> None:
    result = bench.Result("d", "review", "sentiment", 3)
    for tutorial, ours in ((90.0, 20.0), (100.0, 30.0), (120.0, 25.0)):
        result.runs += [bench.Run("tutorial", tutorial, 0.6, 0.6), bench.Run("ours", ours, 0.7, 0.7)]
    assert result.ratio == pytest.approx(100.0 / 25.0)
    assert bench.summary_line(result) == "ours 25.0 s vs tutorial 100.0 s: 4.00x (target 4x)"


def test_text_column_default_and_missing_columns(bench, tmp_path: Path) -> None:
    cleaned = write_reviews(tmp_path / "cleaned.csv", n=4, text_column="cleaned_review")
    assert bench.resolve_columns(cleaned, None, "sentiment") == ("cleaned_review", "sentiment")
    both = tmp_path / "both.csv"
    both.write_text("cleaned_review,review,sentiment\na,b,positive\n")
    assert bench.resolve_columns(both, None, "sentiment")[0] == "review"
    with pytest.raises(SystemExit, match="no column 'label'"):
        bench.resolve_columns(cleaned, None, "label")
    with pytest.raises(SystemExit, match="no text column"):
        bench.resolve_columns(write_reviews(tmp_path / "t.csv", n=4, text_column="body"), None, "sentiment")


def test_missing_data_file_exits_with_a_message(bench, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"data file not found: .*nowhere\.csv\.gz"):
        bench.main(["--data", str(tmp_path / "nowhere.csv.gz")], log=lambda _: None)
