"""``python -m sentiment``, slowed down so that a test can send a signal at a chosen moment (tests only).

SLOW_STEP=S sleeps S seconds before every optimizer step (training lasts long enough to be interrupted);
SLOW_COMMIT=S prints ``committing <staging dir>`` on stderr and sleeps S seconds before the finished model
directory is moved into place (a kill then lands in the middle of saving). Numerics are untouched.

Under torchrun (tests/test_distributed.py): PREPARE_LOG=FILE appends the rank of every process that prepares
the data (``pipeline.prepare``, Word2Vec included); BATCH_LOG=DIR writes, per rank, one JSON line per training
batch a rank takes from its ``distributed.ShardedBatches`` (its epoch pass and its rows).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    import torch

    from sentiment import atomic

    step_delay = float(os.environ.get("SLOW_STEP", "0"))
    if step_delay:
        step = torch.optim.Adam.step

        def slow_step(self, *args, **kwargs):
            time.sleep(step_delay)
            return step(self, *args, **kwargs)

        torch.optim.Adam.step = slow_step
    commit_delay = float(os.environ.get("SLOW_COMMIT", "0"))
    if commit_delay:
        commit = atomic.commit_dir

        def slow_commit(staging: Path, target: Path) -> None:
            if target.parent.name not in ("word2vec", "prepared") and not target.name.endswith(".checkpoint"):
                print(f"committing {staging}", file=sys.stderr, flush=True)
                time.sleep(commit_delay)
            commit(staging, target)

        atomic.commit_dir = slow_commit
    prepare_log = os.environ.get("PREPARE_LOG")
    if prepare_log:
        from sentiment import pipeline

        prepare = pipeline.prepare

        def logged_prepare(*args, **kwargs):
            with open(prepare_log, "a", encoding="utf-8") as fh:
                fh.write(f"{os.environ.get('RANK', '-')}\n")
            return prepare(*args, **kwargs)

        pipeline.prepare = logged_prepare
    batch_log = os.environ.get("BATCH_LOG")
    if batch_log:
        import json

        from sentiment import distributed

        batches_of = distributed.ShardedBatches.__iter__
        passes = {"n": 0}

        def logged_batches(self):
            passes["n"] += 1
            path = Path(batch_log) / f"rank{os.environ.get('RANK', '-')}.jsonl"
            with path.open("a", encoding="utf-8") as fh:
                for rows in batches_of(self):
                    fh.write(json.dumps({"pass": passes["n"], "rows": rows}) + "\n")
                    fh.flush()
                    yield rows

        distributed.ShardedBatches.__iter__ = logged_batches
    from sentiment.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
