"""What the user sees while a run goes: rich progress bars on a terminal, plain log lines otherwise.

Everything goes to stderr so that stdout carries only results (tables, JSON).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO


class Reporter:
    """Stage timings, progress bars and log lines. ``quiet`` keeps only warnings; ``verbose`` adds detail."""

    def __init__(
        self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None, live: bool | None = None
    ) -> None:
        from rich.console import Console

        self.quiet, self.verbose = quiet, verbose
        self.console = Console(file=stream or sys.stderr, highlight=False, soft_wrap=True)
        self.live = (self.console.is_terminal if live is None else live) and not quiet
        self.timings: dict[str, float] = {}

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False)

    def detail(self, message: str) -> None:
        if self.verbose and not self.quiet:
            self.console.print(message, markup=False, style="dim")

    def warn(self, message: str) -> None:
        self.console.print(f"warning: {message}", markup=False, style="yellow")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a pipeline stage; the time is added to the end-of-run summary."""
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[name] = self.timings.get(name, 0.0) + elapsed
        self.detail(f"{name}: {elapsed:.2f} s")

    @contextlib.contextmanager
    def bar(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        """A progress bar on a terminal; a no-op elsewhere. Yields ``update(completed, **fields)``."""
        if not self.live:
            yield lambda *args, **kwargs: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        ) as progress:
            task = progress.add_task(description, total=total, info="")

            def update(completed: int | None = None, info: str = "") -> None:
                progress.update(task, completed=completed, info=info)

            yield update

    def timing_table(self) -> None:
        if self.quiet or not self.timings:
            return
        from rich.table import Table

        table = Table(title="Time per stage", title_justify="left", show_edge=False)
        table.add_column("stage")
        table.add_column("seconds", justify="right")
        for name, seconds in self.timings.items():
            table.add_row(name, f"{seconds:.2f}")
        table.add_row("total", f"{sum(self.timings.values()):.2f}", style="bold")
        self.console.print(table)
