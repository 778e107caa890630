"""`trustwh-dbt`: dbt, as the dbt resource starts it, in a process that does not outlive the
run's process. Killed, that process leaves no `dbt build` behind holding the working database
while the home's run lock is already free (the next run would fail at its ingest).

dagster-dbt starts dbt with a plain `subprocess.Popen` (no `preexec_fn`), so the process arms
Linux's parent-death signal itself, before anything else: it is killed when the thread that
started it ends. dagster-dbt starts dbt in the step's thread and waits for it there.
Only the standard library is imported before that: the package's `__init__`s are empty.
"""

import ctypes
import os
import signal
import sys

# The process that starts dbt, set by the dbt resource (`resource.py`) for this one only.
PARENT_PID = "TRUSTWH_DBT_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main() -> None:
    parent = os.environ.pop(PARENT_PID, None)
    if parent and sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
        if os.getppid() != int(parent):
            sys.exit(1)  # its run died before the signal was armed: nothing to build for
    from dbt.cli.main import cli

    sys.exit(cli())
