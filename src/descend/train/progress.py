"""Progress reporting for fit(): a rich bar on a terminal, spaced log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "make_progress"]


class Progress:
    """Silent progress (``progress=False``); the base of the two visible kinds.

    ``update`` takes fit's epoch index (from 0); the lines show epochs counted from 1, as
    ``"completed 20 epochs"`` counts them: the last line of a 20-epoch run says ``epoch 20``.
    """

    def start(self, total_steps: int | None, description: str) -> None:
        pass

    def update(self, step: int, epoch: int, loss: float, lr: float, samples: int) -> None:
        pass

    def close(self, message: str = "") -> None:
        pass


class _Plain(Progress):
    """One line every ~5% of the run (and at most every few seconds when the length is unknown)."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def start(self, total_steps: int | None, description: str) -> None:
        self.total = total_steps
        self.every = max(1, (total_steps or 0) // 20)
        self.t0 = self.last = time.perf_counter()
        self.samples0 = 0
        self.stream.write(f"{description}\n")
        self.stream.flush()

    def update(self, step: int, epoch: int, loss: float, lr: float, samples: int) -> None:
        now = time.perf_counter()
        due = step % self.every == 0 if self.total else now - self.last >= 5.0
        if not due and step != self.total:
            return
        rate = samples / max(now - self.t0, 1e-9)
        of = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and step:
            eta = f" eta {((now - self.t0) / step) * (self.total - step):.0f}s"
        self.stream.write(
            f"step {step}{of} epoch {epoch + 1} loss {loss:.4g} lr {lr:.3g} {_rate(rate)} samples/s{eta}\n"
        )
        self.stream.flush()
        self.last = now

    def close(self, message: str = "") -> None:
        if message:
            self.stream.write(message + "\n")
            self.stream.flush()


class _Rich(Progress):
    """A live bar whose line leads with the numbers (epoch, step, loss, lr, samples/s, ETA): on
    an 80-column terminal they all fit, and the bar takes what is left. The description (model,
    optimizer, batch size) is printed once above it."""

    def __init__(self, stream: TextIO):
        from rich.console import Console

        self.console = Console(file=stream)

    def start(self, total_steps: int | None, description: str) -> None:
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.total = total_steps
        of = f"/{total_steps}" if total_steps else ""
        self.bar = RichProgress(
            TextColumn(
                "epoch {task.fields[epoch]} step {task.fields[step]}" + of + " loss {task.fields[loss]} "
                "lr {task.fields[lr]} {task.fields[rate]} samples/s",
                markup=False,
            ),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            BarColumn(bar_width=None),
            console=self.console,
            transient=False,
            expand=True,
        )
        self.console.print(description, highlight=False, soft_wrap=True)
        self.t0 = time.perf_counter()
        self.next_at, self.last = 0.0, None
        self.task = self.bar.add_task("", total=total_steps, epoch=1, step=0, loss="-", lr="-", rate="-")
        self.bar.start()

    #: seconds between updates of the bar's numbers (rich redraws 10 times a second; formatting
    #: them on every step would cost a small model's step a third of its time)
    EVERY = 0.05

    def update(self, step: int, epoch: int, loss: float, lr: float, samples: int) -> None:
        now = time.perf_counter()
        self.last = (step, epoch, loss, lr, samples, now)
        if now >= self.next_at or step == self.total:
            self.next_at = now + self.EVERY
            self._show(*self.last)

    def _show(self, step: int, epoch: int, loss: float, lr: float, samples: int, now: float) -> None:
        self.bar.update(
            self.task,
            completed=step,
            step=step,
            epoch=epoch + 1,
            loss=f"{loss:.4g}",
            lr=f"{lr:.3g}",
            rate=_rate(samples / max(now - self.t0, 1e-9)),
        )

    def close(self, message: str = "") -> None:
        if self.last is not None:  # the numbers of the last step, even if it came between updates
            self._show(*self.last)
            self.last = None
        self.bar.stop()
        if message:
            self.console.print(message, highlight=False)


def _rate(per_second: float) -> str:
    """``412k`` rather than ``412,436``: the bar's line has no room to spare."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_second >= div:
            return f"{per_second / div:.3g}{suffix}"
    return f"{per_second:.3g}"


def make_progress(progress: Any, stream: TextIO | None = None) -> Progress:
    """``None``: a bar on a terminal, else plain lines; ``True``/``"rich"``/``"plain"``; ``False``: silent."""
    from .._validation import describe

    stream = stream or sys.stderr
    if progress is False:
        return Progress()
    if progress is None or progress is True:
        return _Rich(stream) if stream.isatty() else _Plain(stream)
    if progress == "rich":
        return _Rich(stream)
    if progress == "plain":
        return _Plain(stream)
    raise ValueError(f"fit: progress must be None, True, False, 'rich' or 'plain', got {describe(progress)}")
