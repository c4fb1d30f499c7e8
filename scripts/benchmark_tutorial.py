"""Speed against the tutorial (issue #13): ``configs/tutorial.yaml`` end to end vs the tutorial's own code.

What it measures: the wall-clock seconds of two whole processes on the same data file, run alternately in one
go (tutorial, ours, tutorial, ours, ...), and the ratio of their medians (tutorial / ours; the target is 4x).

* tutorial: the code of ``../shared/reference/tutorial.txt`` (the iThome tutorial's Word2Vec + SimpleMLP),
  transcribed in ``TUTORIAL_CODE`` below with its indentation restored, written to a scratch .py file and run
  as ``python SCRATCH.py DATA TEXT_COLUMN LABEL_COLUMN`` in a subprocess (never imported here, so none of its
  imports or state reach this process). Only two things differ from the tutorial: the data loading (the file
  passed in, read by ``pd.read_csv(path)``, which reads .csv.gz too, with the text and label columns as
  parameters, instead of ``kagglehub.dataset_download`` + ``IMDB_cleaned.csv``; ``import kagglehub`` goes
  with it) and one JSON line printed at the end with accuracy, precision, recall and F1. Everything else is
  the tutorial's: whitespace split, ``Word2Vec(vector_size=50, window=5, min_count=1, workers=4)`` on all the
  rows, the per-sentence ``torch.tensor(vecs).mean`` loop, the first 80 % / last 20 % split in file order,
  DataLoader batch 64 (training shuffled, as written), SimpleMLP 50-32-1 with BCELoss, Adam lr 0.001,
  5 epochs, the scikit-learn metrics.
* ours: ``python -m sentiment train -c configs/tutorial.yaml --set data.path=DATA --set data.text_column=...
  --set data.label_column=... -o DIR -q`` in a subprocess with ``SENTIMENT_HOME`` set to a fresh, empty
  directory for every run (cold: no cached Word2Vec vectors or prepared data). Its figures come from
  ``DIR/metrics.json`` ("test"), over the same last 20 % of rows.

Both are timed around the whole process: interpreter start, imports, reading, Word2Vec, training, evaluating
(and, for ours, writing the model directory with its report and plots). Before the first timed run one
untimed process imports pandas, torch, gensim, scikit-learn and the package and reads the data file, so that
the first timed run (the tutorial's) does not alone pay for a cold disk cache.

Ratios only hold when both sides run in one go on the same machine in the same state: do not compare a
ratio's halves from different sessions, and run it on an otherwise idle machine.

    .venv/bin/python scripts/benchmark_tutorial.py                         # IMDB train.csv.gz, 2 repeats
    .venv/bin/python scripts/benchmark_tutorial.py --repeats 3 --json tutorial_speed.json
    .venv/bin/python scripts/benchmark_tutorial.py --data ../shared/data/kaggle-cleaned/IMDB_cleaned.csv
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "imdb" / "train.csv.gz"
CONFIG = ROOT / "configs" / "tutorial.yaml"
TARGET = 4.0
TEXT_COLUMNS = ("review", "cleaned_review")  # --text-column default: the first one the file has

# The tutorial's code (../shared/reference/tutorial.txt, sections 1-6), indentation restored. Changed:
# section 1 reads the file given on the command line (was kagglehub.dataset_download + IMDB_cleaned.csv),
# the two df['cleaned_review'] and the df['sentiment'] take the column names given, and the last lines
# (after "# --- benchmark:") print the figures as one JSON line. Nothing else is changed.
TUTORIAL_CODE = """\
# 1. 讀取資料 (benchmark: the file and its columns come from the command line, not kagglehub)
import sys
import os
import pandas as pd
data_path, text_column, label_column = sys.argv[1:4]
df = pd.read_csv(data_path)

# 2. 資料前處理
import torch
from gensim.models import Word2Vec

# 將句子拆成單詞轉成 embedding
sentences = [review.split() for review in df[text_column]]
w2v_model = Word2Vec(sentences, vector_size=50, window=5, min_count=1, workers=4)

# 將每篇文章的單詞向量平均
def embed_sentence(sentence):
    vecs = [w2v_model.wv[word] for word in sentence if word in w2v_model.wv]
    if len(vecs) == 0:
        return torch.zeros(50)
    return torch.tensor(vecs).mean(dim=0)

# feature
X = torch.stack([embed_sentence(s.split()) for s in df[text_column]])
# label
y = torch.tensor([1 if s=='positive' else 0 for s in df[label_column]], dtype=torch.float32)

# 3. 切分資料集&將資料裝成 Data Loader
from torch.utils.data import DataLoader, TensorDataset

# training set:test set => 8:2
train_size = int(0.8 * len(X))
X_train, X_test = X[:train_size], X[train_size:]
y_train, y_test = y[:train_size], y[train_size:]

# 建立 Tensor Dataset
train_ds = TensorDataset(X_train, y_train)
test_ds = TensorDataset(X_test, y_test)

# 建立 Data Loader
train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
test_loader = DataLoader(test_ds, batch_size=64)

# 4. 建立模型
import torch.nn as nn
import torch.optim as optim

class SimpleMLP(nn.Module):
    def __init__(self, input_dim=50, hidden_dim=32, output_dim=1):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, output_dim)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        x = self.relu(self.fc1(x))
        x = self.sigmoid(self.fc2(x))
        return x.squeeze()

model = SimpleMLP()
criterion = nn.BCELoss() # 損失函數
optimizer = optim.Adam(model.parameters(), lr=0.001) # 優化器、學習率

# 5. 訓練模型
model.train()
epochs = 5
for epoch in range(epochs):
    model.train()
    total_loss = 0
    for xb, yb in train_loader: # 批次訓練
        optimizer.zero_grad() # 每次訓練梯度歸零
        preds = model(xb) # 前向傳播
        loss = criterion(preds, yb) # 計算損失
        loss.backward() # 反向傳播
        optimizer.step() # 更新權重
        total_loss += loss.item()
    print(f"Epoch {epoch+1}/{epochs}, Loss: {total_loss/len(train_loader):.4f}")

# 6. 評估模型
model.eval()
from sklearn.metrics import precision_score, recall_score, f1_score

y_true = []
y_pred = []

model.eval()
with torch.no_grad(): # 關閉梯度計算
    for xb, yb in test_loader:
        outputs = model(xb)
        preds = (outputs >= 0.5).float()
        y_true.extend(yb.cpu().numpy())
        y_pred.extend(preds.cpu().numpy())

# 計算 metrics
acc = sum([1 if p == t else 0 for p, t in zip(y_pred, y_true)]) / len(y_true)
precision = precision_score(y_true, y_pred)
recall = recall_score(y_true, y_pred)
f1 = f1_score(y_true, y_pred)

print(f"Accuracy : {acc:.4f}")
print(f"Precision: {precision:.4f}")
print(f"Recall : {recall:.4f}")
print(f"F1-score : {f1:.4f}")

# --- benchmark: the figures as one JSON line, for scripts/benchmark_tutorial.py
import json
figures = {"accuracy": acc, "precision": precision, "recall": recall, "f1": f1}
print(json.dumps({name: float(value) for name, value in figures.items()}))
"""

WARMUP_CODE = """\
import sys
import pandas, torch, gensim.models, sklearn.metrics, sentiment.cli
with open(sys.argv[1], "rb") as fh:
    while fh.read(1 << 20):
        pass
"""


@dataclass
class Run:
    side: str  # "tutorial" or "ours"
    seconds: float
    accuracy: float
    f1: float
    precision: float | None = None
    recall: float | None = None


@dataclass
class Result:
    data: str
    text_column: str
    label_column: str
    repeats: int
    runs: list[Run] = field(default_factory=list)

    def seconds(self, side: str) -> list[float]:
        return [r.seconds for r in self.runs if r.side == side]

    def median(self, side: str, key: str = "seconds") -> float:
        return statistics.median(getattr(r, key) for r in self.runs if r.side == side)

    @property
    def ratio(self) -> float:
        """Median tutorial seconds / median seconds of ours: how many times faster ours is."""
        return self.median("tutorial") / self.median("ours")

    def to_json(self) -> dict[str, Any]:
        sides = {
            side: {
                "seconds": self.seconds(side),
                "median_seconds": self.median(side),
                "median_accuracy": self.median(side, "accuracy"),
                "median_f1": self.median(side, "f1"),
            }
            for side in ("tutorial", "ours")
        }
        return {
            "data": self.data,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "repeats": self.repeats,
            "runs": [asdict(r) for r in self.runs],
            **sides,
            "ratio": self.ratio,
            "target": TARGET,
            "meets_target": self.ratio >= TARGET,
        }


def _tail(text: str | None, lines: int = 20) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:]) or "(no output)"


def file_columns(path: Path) -> list[str]:
    import pandas as pd

    return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def resolve_columns(path: Path, text_column: str | None, label_column: str) -> tuple[str, str]:
    if not path.is_file():
        raise SystemExit(
            f"data file not found: {path}\n"
            "pass --data FILE (the IMDB training file is expected at ../shared/data/imdb/train.csv.gz)"
        )
    columns = file_columns(path)
    if text_column is None:
        text_column = next((c for c in TEXT_COLUMNS if c in columns), None)
        if text_column is None:
            raise SystemExit(f"{path}: no text column among {columns}; pass --text-column")
    for name, option in ((text_column, "--text-column"), (label_column, "--label-column")):
        if name not in columns:
            raise SystemExit(f"{path}: no column '{name}' ({option}); the file has {columns}")
    return text_column, label_column


def write_tutorial_script(path: Path) -> Path:
    path.write_text(TUTORIAL_CODE, encoding="utf-8")
    return path


def run_tutorial(script: Path, data: Path, text_column: str, label_column: str) -> Run:
    """The tutorial's code in its own fresh process, timed around the whole process."""
    command = [sys.executable, str(script), str(data), text_column, label_column]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"tutorial: the script exited with status {done.returncode}:\n{_tail(done.stderr)}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"tutorial: no JSON figures in its output:\n{_tail(done.stdout)}")
    figures = json.loads(lines[-1])
    return Run(
        "tutorial",
        seconds,
        float(figures["accuracy"]),
        float(figures["f1"]),
        float(figures["precision"]),
        float(figures["recall"]),
    )


def ours_command(data: Path, text_column: str, label_column: str, output: Path) -> list[str]:
    command = [sys.executable, "-m", "sentiment", "train", "-c", str(CONFIG)]
    for item in (f"data.path={data}", f"data.text_column={text_column}", f"data.label_column={label_column}"):
        command += ["--set", item]
    return [*command, "-o", str(output), "-q"]


def run_ours(data: Path, text_column: str, label_column: str, output: Path) -> Run:
    """``sentiment train -c configs/tutorial.yaml`` cold (a fresh, empty SENTIMENT_HOME), timed around the
    whole process; the figures from the model directory's metrics.json."""
    command = ours_command(data, text_column, label_column, output)
    with tempfile.TemporaryDirectory(prefix="sentiment-home-tutorial-") as home:
        env = {**os.environ, "SENTIMENT_HOME": home}
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"ours: `sentiment train` exited with status {done.returncode}:\n{_tail(done.stderr)}"
        )
    test = json.loads((output / "metrics.json").read_text(encoding="utf-8"))["test"]
    return Run(
        "ours",
        seconds,
        float(test["accuracy"]),
        float(test["f1"]),
        test.get("precision"),
        test.get("recall"),
    )


def warm_up(data: Path) -> None:
    """One untimed process that imports what both sides import and reads the data file (disk cache)."""
    subprocess.run([sys.executable, "-c", WARMUP_CODE, str(data)], capture_output=True, check=False)


def _format_run(run: Run) -> str:
    return f"{run.side}: {run.seconds:.1f} s  accuracy {run.accuracy:.4f}  F1 {run.f1:.4f}"


def summary_line(result: Result) -> str:
    ours, tutorial = result.median("ours"), result.median("tutorial")
    return f"ours {ours:.1f} s vs tutorial {tutorial:.1f} s: {result.ratio:.2f}x (target {TARGET:g}x)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="labelled data file (CSV, .csv.gz)")
    parser.add_argument(
        "--text-column", help="text column (default: review if the file has it, else cleaned_review)"
    )
    parser.add_argument("--label-column", default="sentiment", help="label column (positive / negative)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, alternating (default 2)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up process")
    parser.add_argument("--json", help="also write the runs, medians and ratio to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None, log: Callable[[str], None] = print) -> Result:
    args = parse_args(argv)
    data = Path(args.data).expanduser().resolve()
    text_column, label_column = resolve_columns(data, args.text_column, args.label_column)
    result = Result(str(data), text_column, label_column, args.repeats)
    log(f"data {data} (text '{text_column}', label '{label_column}'), {args.repeats} repeats, alternating")
    with tempfile.TemporaryDirectory(prefix="sentiment-bench-tutorial-") as tmp:
        workdir = Path(tmp)
        script = write_tutorial_script(workdir / "tutorial_scratch.py")
        if not args.no_warmup:
            warm_up(data)
        for i in range(args.repeats):
            for run in (
                run_tutorial(script, data, text_column, label_column),
                run_ours(data, text_column, label_column, workdir / f"model-{i}"),
            ):
                result.runs.append(run)
                log(f"[{i + 1}/{args.repeats}] {_format_run(run)}")
    for side in ("tutorial", "ours"):
        seconds = ", ".join(f"{s:.1f}" for s in result.seconds(side))
        log(
            f"{side}: median {result.median(side):.1f} s ({seconds}); median accuracy "
            f"{result.median(side, 'accuracy'):.4f}, F1 {result.median(side, 'f1'):.4f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    log(summary_line(result))
    return result


if __name__ == "__main__":
    main()
