"""What went wrong in a run, in a line a person reads (the CLI's summary, the failure alert),
and interrupts that must stop a run even where a library swallows them."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

INTERRUPTED = "interrupted (Ctrl-C, or the process was asked to stop)"
# Where a failure with no step is said to be: the run's resources, before any step.
RUN_START = "the run's start"
# Marks the ingest's log line per landed file (`extra={FILE_LINE: True}`; Dagster hands a log
# call's extra on to the CLI's logger): the Dagster UI shows each line, and the CLI lists the
# files a person must look at in its summary instead.
FILE_LINE = "trustwh_file_line"
# What an interrupt is raised as: Python's own, and Dagster's inside a step.
_INTERRUPT_CLASSES = ("KeyboardInterrupt", "DagsterExecutionInterruptedError")
# A Ctrl-C that came outside this project's code is signalled again this many seconds later,
# until it comes where it can be raised.
RAISE_AGAIN_AFTER = 0.05
# The code a Ctrl-C may be raised in at once: this package and data_tests/ beside it (by the
# path it was imported from, and by its real one).
_PROJECT = tuple(
    {
        str(root / folder) + os.sep
        for root in (
            Path(__file__).absolute().parent.parent,
            Path(__file__).resolve().parent.parent,
        )
        for folder in ("dagster_project", "data_tests")
    }
)


def error_line(error: Any) -> str:
    """The first line of a Dagster error (its SerializableErrorInfo), under Dagster's wrappers
    ("Error occurred while executing op …") and without the exception's module path."""
    if error is None:
        return "failed"
    if _chain_interrupted(error, lambda each: each.cls_name, "cause", "context"):
        return INTERRUPTED
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    line = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name
    return re.sub(r"^[\w.]+: ", "", line)


def interrupted(error: BaseException) -> bool:
    """Whether `error` comes of an interrupt. DuckDB stops a query when the SIGINT handler
    raises inside it, and raises `RuntimeError('Query interrupted')` caused by the handler's
    exception instead: code that catches broad errors must let that one through."""
    return _chain_interrupted(error, lambda each: type(each).__name__, "__cause__", "__context__")


def _chain_interrupted(error: Any, name: Any, *links: str) -> bool:
    seen = 0
    while error is not None and seen < 20:
        if name(error) in _INTERRUPT_CLASSES:
            return True
        error = next((getattr(error, link) for link in links if getattr(error, link)), None)
        seen += 1
    return False


@contextlib.contextmanager
def noting_interrupts() -> Iterator[None]:
    """Code inside meets a Ctrl-C (SIGINT, or SIGTERM where it is handled alike) as the
    handler in place raises it, where that is safe: in this project's code, including while
    a DuckDB query it runs checks for signals (DuckDB then stops the query). Anywhere else it
    is noted and signalled again a moment later, until it comes in this project's code; and
    it is raised when the code inside returns, if it has not been by then. An error it became
    (DuckDB's `Query interrupted`) leaves as that interrupt.

    Raised anywhere, as Dagster's handler does, a Ctrl-C was lost and the run went on to
    publish when it came in GX's metric queries (GX catches their errors and computes again)
    or in a garbage collector's callback (whose errors are printed and dropped); and in
    Python's import machinery it left the import lock held, so the gate waited forever for
    GX's import in the background. Only the main thread handles signals; elsewhere this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    again: list[threading.Timer] = []
    handlers = {signo: signal.getsignal(signo) for signo in (signal.SIGINT, signal.SIGTERM)}

    def note(signo: int, frame: Any) -> None:
        noted.append(signo)
        if frame is not None and frame.f_code.co_filename.startswith(_PROJECT):
            handlers[signo](signo, frame)  # raised in this project's code, which expects it
        elif not any(timer.is_alive() for timer in again):
            again.append(_signal_again(signo))

    for signo, handler in handlers.items():
        if callable(handler):  # a signal left to the system's default stops the process anyway
            signal.signal(signo, note)
    try:
        yield
    except BaseException as error:
        if noted and type(error).__name__ not in _INTERRUPT_CLASSES:
            handlers[noted[0]](noted[0], None)  # the interrupt it is, raised from the error
        raise
    finally:
        for timer in again:
            timer.cancel()
        for signo, handler in handlers.items():
            if callable(handler):
                signal.signal(signo, handler)
    if noted:
        handlers[noted[0]](noted[0], None)


def _signal_again(signo: int) -> threading.Timer:
    """Send this process `signo` again in a moment (RAISE_AGAIN_AFTER)."""
    timer = threading.Timer(RAISE_AGAIN_AFTER, os.kill, (os.getpid(), signo))
    timer.daemon = True
    timer.start()
    return timer


def noting_interrupts_of(steps: Generator[Any, None, None]) -> Generator[Any, None, None]:
    """The items of a Dagster step's generator, each made under `noting_interrupts`: Dagster
    sets its own handler again each time it resumes the step, so one `noting_interrupts`
    around the body would lapse at its first yield."""
    try:
        while True:
            with noting_interrupts():
                try:
                    item = next(steps)
                except StopIteration:
                    return
            yield item
    finally:
        steps.close()  # an interrupted step's body leaves its `with` blocks (connections)


@contextlib.contextmanager
def interrupts_kept() -> Iterator[list[int]]:
    """The SIGINT and SIGTERM signals that came while the code inside ran, whichever handler
    took them (Python's wakeup file descriptor sees every one); and no interrupt lost on the
    way. A handler's interrupt raised in a garbage collector's callback or a `__del__` is
    printed as "Exception ignored" and dropped: it is signalled again instead, to land where
    it stops the run. SQLAlchemy logs one raised while its pool closes a connection, with a
    traceback, and raises it on: that log line is left out. Only the main thread handles
    signals; elsewhere this keeps nothing."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    previous_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_value is not None and interrupted(unraisable.exc_value):
            # Raised here it would be dropped again: signalled a moment later, it lands where
            # the handler in place stops the run.
            _signal_again(signal.SIGINT)
        else:
            previous_hook(unraisable)

    # SQLAlchemy makes a pool's logger when it makes the pool, which Dagster does when the
    # run's instance opens: the records of every pool pass through one handler on the
    # parent, which hands on all but the interrupts.
    pools = logging.getLogger("sqlalchemy.pool")
    passing = _AllButInterrupts(logging.getLogger("sqlalchemy"))
    propagate = pools.propagate
    sys.unraisablehook = hook
    pools.addHandler(passing)
    pools.propagate = False
    try:
        yield seen
    finally:
        pools.propagate = propagate
        pools.removeHandler(passing)
        sys.unraisablehook = previous_hook
        signal.set_wakeup_fd(previous_fd)
        with contextlib.suppress(BlockingIOError):
            while data := os.read(read, 512):
                seen.extend(signo for signo in data if signo in (signal.SIGINT, signal.SIGTERM))
        os.close(read)
        os.close(write)


class _AllButInterrupts(logging.Handler):
    """Hands every record but an interrupt's on to `logger`, as if logged there."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or not interrupted(error):
            self.logger.handle(record)
