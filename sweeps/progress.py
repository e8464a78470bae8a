"""Live progress lines of a running sweep: done / running / failed / pending, elapsed,
ETA, the best validation loss so far and, once a trial fails, the first error's first line."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Live progress lines: done / running / failed / pending, elapsed, ETA, best so far."""

    def __init__(
        self, name: str, total: int, already: int, out: TextIO | None, every: float = 10.0, group_size: int = 1
    ):
        self.name, self.total, self.already, self.out, self.every = name, total, already, out, every
        self.group_size = group_size  # rows per running Tune trial: a restart group's members
        self.start = time.monotonic()
        self.last = 0.0
        self.counts: dict[str, int] = {}
        self.running: set[str] = set()
        self.partial: dict[str, float] = {}  # fraction of its steps each running trial has done
        self.waiting: dict[str, int] = {}  # per running restart group: members waiting for a rung
        self.best: tuple[float, str] | None = None
        self.first_error: str | None = None  # the first failed trial's error, first line

    @property
    def finished(self) -> int:
        return sum(self.counts.values())

    def trial_started(self, tid: str) -> None:
        self.running.add(tid)

    def set_running(self, tids: set[str]) -> None:
        """The trials Ray Tune reports as RUNNING (its own states, the source of truth)."""
        self.running = set(tids)

    def trial_progress(self, tid: str, fraction: float, waiting: int | None = None) -> None:
        self.partial[tid] = min(max(fraction, 0.0), 1.0)
        if waiting is not None:
            self.waiting[tid] = waiting

    def trial_finished(self, tid: str, status: str, val_loss: float | None, error: str | None = None) -> None:
        self.group_finished(tid, [(tid, status, val_loss, error)])

    def group_finished(self, tid: str, rows: list[tuple[str, str, float | None, str | None]]) -> None:
        """A trial's rows landed: one, or one per member of a restart group (each counts as
        a trial of the total; the group's running fraction goes)."""
        self.running.discard(tid)
        self.partial.pop(tid, None)
        self.waiting.pop(tid, None)
        for row_id, status, val_loss, error in rows:
            self.counts[status] = self.counts.get(status, 0) + 1
            if status in BAD and self.first_error is None:
                self.first_error = f"{row_id}: {first_line(error)}"
            if status == "ok" and val_loss is not None and (self.best is None or val_loss < self.best[0]):
                self.best = (val_loss, row_id)
        # a line per finished trial, but at most one a second: thousands of short trials
        # would otherwise print thousands of lines
        self.print(force=time.monotonic() - self.last >= 1.0)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        done = self.already + self.finished
        todo = self.total - done
        # Work in trials: finished ones count 1, running ones the fraction of steps done.
        partial = sum(self.partial.values()) * self.group_size
        running = len(self.running) * self.group_size
        worked = self.finished + partial
        eta = _hms(elapsed / worked * (todo - partial)) if worked > 0.01 else "?"
        bad = sum(self.counts.get(s, 0) for s in BAD)
        best = f", best val_loss {self.best[0]:.5f} ({self.best[1]})" if self.best else ""
        first = f" | first error: {self.first_error}" if self.first_error else ""
        tail = f" | elapsed {_hms(elapsed)}, ETA {eta}{best}{first}"
        if self.group_size > 1:
            return self._group_line(done, bad) + tail
        return (
            f"[{self.name}] {done}/{self.total} done ({bad} failed/diverged), {running} running, {max(todo - running, 0)} pending"
            + tail
        )

    def _group_line(self, done: int, bad: int) -> str:
        """Restart groups counted as groups, and their members by what they are doing: one
        member of a running group trains at a time, the others wait for a rung."""
        k = self.group_size
        groups, finished = self.total // k, done // k
        running = len(self.running)
        waiting = sum(self.waiting.get(tid, k - 1) for tid in self.running)
        return (
            f"[{self.name}] {finished}/{groups} groups done ({done} member rows, {bad} failed/diverged), "
            f"{running} running ({running} members training, {waiting} waiting), "
            f"{max(groups - finished - running, 0)} pending"
        )

    def due(self) -> bool:
        """Whether the next ``print`` would print (a line every ``every`` seconds)."""
        return self.out is not None and time.monotonic() - self.last >= self.every

    def print(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.out is None or (not force and now - self.last < self.every):
            return
        self.last = now
        print(self.line(), file=self.out, flush=True)


BAD = ("failed", "diverged")
ERROR_WIDTH = 160  # characters of an error's first line shown in a progress line


def first_line(error: str | None, width: int = ERROR_WIDTH) -> str:
    """An error's first non-empty line, shortened to ``width`` characters."""
    line = next((part.strip() for part in (error or "").splitlines() if part.strip()), "no error text")
    return line if len(line) <= width else line[: width - 3] + "..."


def _hms(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
