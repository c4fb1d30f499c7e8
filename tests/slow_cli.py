"""``python -m sentiment``, slowed down so that a test can send a signal at a chosen moment (tests only).

SLOW_STEP=S sleeps S seconds before every optimizer step (training lasts long enough to be interrupted);
SLOW_COMMIT=S prints ``committing <staging dir>`` on stderr and sleeps S seconds before the finished model
directory is moved into place (a kill then lands in the middle of saving). Numerics are untouched.
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
    from sentiment.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
