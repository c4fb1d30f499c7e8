"""What the user sees while a run goes: rich progress bars on a terminal, plain log lines otherwise.

Everything goes to stderr so that stdout carries only results (tables, JSON). Three levels:

* default: on a terminal, live bars (download, tokenisation, Word2Vec epochs, training epochs and batches)
  and a few summary lines; elsewhere (a pipe, a file, CI) no bars and no control codes, one plain line per
  step instead.
* ``quiet`` (--quiet, and the library default when ``pipeline.train`` gets no reporter): warnings only; no
  bars, no lines, no timing summary. The results on stdout are the CLI's and stay.
* ``verbose``: adds the per-step lines on a terminal too, each stage's time as it ends and library INFO logs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sentiment.fit_state import EpochRecord

# update(completed=None, *, total=None, description=None, info=None, advance=None, restart=False)
Updater = Callable[..., None]


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams (test runners)
        return False


class Reporter:
    """Stage timings, progress bars and log lines. ``quiet`` keeps only warnings; ``verbose`` adds detail."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        verbose: bool = False,
        stream: TextIO | None = None,
        live: bool | None = None,
    ) -> None:
        from rich.console import Console

        self.quiet, self.verbose = quiet, verbose and not quiet
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        if live is None:
            # Bars only when a person watches both streams: `train > results.txt` gets plain lines, not a bar
            # redrawn with control codes between the results.
            live = self.console.is_terminal and (stream is not None or _isatty(sys.stdout))
        self.live = live and not quiet
        self.timings: dict[str, float] = {}

    # -- lines -------------------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        """A summary line every run shows (not with --quiet)."""
        if not self.quiet:
            self.console.print(message, markup=False)

    def step(self, message: str) -> None:
        """A per-step progress line: shown where no bar is (plain output) or with --verbose."""
        if not self.quiet and (not self.live or self.verbose):
            self.console.print(message, markup=False)

    def detail(self, message: str) -> None:
        """Extra detail for --verbose."""
        if self.verbose:
            self.console.print(message, markup=False, style="dim")

    def warn(self, message: str) -> None:
        self.console.print(f"warning: {message}", markup=False, style="yellow")

    def logging_handler(self) -> logging.Handler:
        """A logging handler printing through this reporter's console: log lines never tear a live bar."""
        return _ConsoleHandler(self)

    # -- timings -----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a pipeline stage; the time is added to the end-of-run summary."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
        peak = peak_rss_mb()
        self.detail(f"stage {name}: {elapsed:.2f} s" + (f" (peak RSS so far {peak:,.0f} MB)" if peak else ""))

    def timing_table(self) -> None:
        """The per-stage timing summary (a table on a terminal, aligned plain lines elsewhere)."""
        if self.quiet or not self.timings:
            return
        total = sum(self.timings.values())
        if not self.live:
            width = max(len(name) for name in [*self.timings, "total"])
            lines = [f"  {name:<{width}}  {seconds:8.2f} s" for name, seconds in self.timings.items()]
            self.console.print(
                "\n".join(["time per stage:", *lines, f"  {'total':<{width}}  {total:8.2f} s"]), markup=False
            )
            return
        from rich.table import Table

        table = Table(title="Time per stage", title_justify="left", show_edge=False)
        table.add_column("stage")
        table.add_column("seconds", justify="right")
        table.add_column("share", justify="right")
        for name, seconds in self.timings.items():
            table.add_row(name, f"{seconds:.2f}", f"{seconds / total:.0%}" if total else "")
        table.add_row("total", f"{total:.2f}", "", style="bold")
        self.console.print(table)

    # -- bars --------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def bars(self, *rows: tuple[str, int | None], kind: str = "count") -> Iterator[list[Updater]]:
        """Live bars, one per ``(description, total)`` row, in one display; no-ops without a terminal.

        Yields one ``update(completed=None, *, total=None, description=None, info=None, advance=None)`` per
        row. ``kind="bytes"`` shows sizes and a transfer rate instead of counts.
        """
        if not self.live:
            yield [_noop for _ in rows]
            return
        with self._progress(kind) as progress:
            tasks = [progress.add_task(description, total=total, info="") for description, total in rows]
            yield [_updater(progress, task) for task in tasks]

    @contextlib.contextmanager
    def bar(self, description: str, total: int | None, kind: str = "count") -> Iterator[Updater]:
        """One live bar (see ``bars``)."""
        with self.bars((description, total), kind=kind) as (update,):
            yield update

    @contextlib.contextmanager
    def training(self, epochs: int, label: str = "Training") -> Iterator[TrainingProgress]:
        """Progress of ``training.fit``: pass ``on_epoch`` and ``on_batch`` of what this yields to it."""
        with self.bars((label, epochs), ("  epoch 1", None)) as (epoch_bar, batch_bar):
            prefix = "" if label == "Training" else f"{label.lower()} "  # "refit epoch 1/5": not training
            yield TrainingProgress(self, epochs, epoch_bar, batch_bar, prefix)

    def _progress(self, kind: str) -> Any:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        counts = [DownloadColumn(), TransferSpeedColumn()] if kind == "bytes" else [MofNCompleteColumn()]
        # Narrow terminals keep the numbers and the metrics readable; the bar gives way.
        bar_width = max(10, min(30, self.console.width - 85))
        return Progress(
            TextColumn("{task.description:<15}"),
            BarColumn(bar_width=bar_width),
            *counts,
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=True,  # the summary lines stay; the bars go once a stage ends
        )


class TrainingProgress:
    """Callbacks for ``training.fit``: a bar over epochs with the latest validation metrics and a bar over the
    current epoch's batches with the running loss; one plain line per epoch where no bar is shown."""

    def __init__(
        self, reporter: Reporter, epochs: int, epoch_bar: Updater, batch_bar: Updater, prefix: str = ""
    ) -> None:
        self.reporter, self.epochs, self.prefix = reporter, epochs, prefix
        self._epoch_bar, self._batch_bar = epoch_bar, batch_bar
        self._epoch = 1

    @property
    def on_batch(self) -> Callable[[int, int, float], None] | None:
        # None without bars: fit then skips the per-batch call entirely.
        return self._batch if self.reporter.live else None

    def _batch(self, batch: int, n_batches: int, running_loss: float) -> None:
        if batch == 1:
            self._batch_bar(0, total=n_batches, description=f"  epoch {self._epoch}", restart=True)
        self._batch_bar(batch, info=f"loss {running_loss:.4f}")

    def on_epoch(self, record: EpochRecord) -> None:
        self._epoch = record.epoch + 1
        train = [f"loss {record.train_loss:.4f}"]
        if record.train_accuracy is not None:
            train.append(f"acc {record.train_accuracy:.4f}")
        val = []
        if record.val_loss is not None:
            val = [f"val_loss {record.val_loss:.4f}", f"val_acc {record.val_accuracy:.4f}"]
            val.append(f"val_f1 {record.val_f1:.4f}")
        # the batch bar shows the running training loss; the epoch bar the latest validation metrics (short)
        short = (
            f"val loss {record.val_loss:.4f} acc {record.val_accuracy:.4f} f1 {record.val_f1:.4f}"
            if val
            else " ".join(train)
        )
        self._epoch_bar(record.epoch, info=short)
        self.reporter.step(
            f"{self.prefix}epoch {record.epoch:>3}/{self.epochs}  "
            + "  ".join(train + val)
            + f"  ({record.seconds:.1f} s)"
        )


def _updater(progress: Any, task: Any) -> Updater:
    def update(
        completed: float | None = None,
        *,
        total: float | None = None,
        description: str | None = None,
        info: str | None = None,
        advance: float | None = None,
        restart: bool = False,
    ) -> None:
        if restart:  # a new round (the next epoch's batches): the elapsed time starts again
            progress.reset(task)
        fields: dict[str, Any] = {}
        if description is not None:
            fields["description"] = description
        if info is not None:
            fields["info"] = info
        if total is not None:
            fields["total"] = total
        progress.update(task, completed=completed, advance=advance, **fields)

    return update


class _ConsoleHandler(logging.Handler):
    """``warning: message`` lines through the reporter's console (below INFO: the level as a prefix too)."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = f"{record.levelname.lower()}: {record.getMessage()}"
            style = "yellow" if record.levelno >= logging.WARNING else "dim"
            self.reporter.console.print(message, markup=False, style=style)
        except Exception:  # a logging call must never break the run
            self.handleError(record)


def peak_rss_mb() -> float | None:
    """This process's peak resident set size so far, in MB (None where the platform does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1 << 20) if sys.platform == "darwin" else kb / 1024  # macOS counts bytes, Linux KiB
