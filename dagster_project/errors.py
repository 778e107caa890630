"""What went wrong in a run, in a line a person reads (the CLI's summary, the failure alert)."""

from __future__ import annotations

import re
from typing import Any

INTERRUPTED = "interrupted (Ctrl-C, or the process was asked to stop)"
# Where a failure with no step is said to be: the run's resources, before any step.
RUN_START = "the run's start"
# Marks the ingest's log line per landed file (`extra={FILE_LINE: True}`; Dagster hands a log
# call's extra on to the CLI's logger): the Dagster UI shows each line, and the CLI lists the
# files a person must look at in its summary instead.
FILE_LINE = "trustwh_file_line"


def error_line(error: Any) -> str:
    """The first line of a Dagster error (its SerializableErrorInfo), under Dagster's wrappers
    ("Error occurred while executing op …") and without the exception's module path."""
    if error is None:
        return "failed"
    if error.cls_name == "DagsterExecutionInterruptedError":  # its message is its class name
        return INTERRUPTED
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    line = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name
    return re.sub(r"^[\w.]+: ", "", line)
