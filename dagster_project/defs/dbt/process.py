"""`trustwh-dbt`: dbt, as the dbt resource starts it, in a process that does not outlive the
run's process. Killed, that process leaves no `dbt build` behind holding the working database
while the home's run lock is already free (the next run would fail at its ingest).

dagster-dbt starts dbt with a plain `subprocess.Popen` (no `preexec_fn`), so the process arms
Linux's parent-death signal itself, before anything else: it is killed when the thread that
started it ends. dagster-dbt starts dbt in the step's thread and waits for it there.
Only the standard library (and `settings.py`, which imports no more) is imported before that:
the package's `__init__`s are empty.

A dbt process spends ~3 s before its first model: importing dbt (~2 s) and loading its saved
parse of the project (~1.3 s). A run of the job's dbt step starts a warm dbt
(`trustwh-dbt --warm`, `warm.py`), which does both while the run ingests, then waits. The build's
`trustwh-dbt` hands its command, environment and standard streams to it over a Unix socket
and exits with its exit code: dagster-dbt sees the same process output as before. The warm
dbt builds with the parse it made only when the build's environment is the one it parsed
with and the project's files are as they were; else it parses as dbt would. When there is
no warm dbt (a run of some steps only, `dbt docs generate`), or it ended before taking the
build, `trustwh-dbt` runs dbt itself.
"""

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

from ...settings import project_files

# The process that starts dbt, set by the dbt resource (`resource.py`) for this one only.
PARENT_PID = "TRUSTWH_DBT_PARENT_PID"
# The name of the run's warm dbt (an abstract Unix socket), set by `warm.py` for the warm
# dbt and for the build.
WARM = "TRUSTWH_DBT_WARM"
WARM_FLAG = "--warm"
# What the warm dbt answers: the build is taken, then its exit code (one byte).
_TAKEN = b"+"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_MESSAGE = 1 << 20  # the largest request read: the command and the environment, as JSON


def main() -> None:
    parent = os.environ.pop(PARENT_PID, None)
    if parent and sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
        if os.getppid() != int(parent):
            sys.exit(1)  # its run died before the signal was armed: nothing to build for
    name = os.environ.pop(WARM, None)  # in the environment, which only this user can read
    if sys.argv[1:] == [WARM_FLAG] and name:
        sys.exit(serve(name))
    if name and (code := hand_over(name)) is not None:
        sys.exit(code)
    from dbt.cli.main import cli

    sys.exit(cli())


def parse_environment(environment: dict[str, str]) -> dict[str, str]:
    """What a parse of the project depends on beside its files: dbt's settings and the
    project's own (the profile, `env_var()` in models)."""
    return {
        name: value
        for name, value in environment.items()
        if name.startswith(("DBT_", "TRUSTWH_")) and name not in (PARENT_PID, WARM)
    }


def _project_state() -> list[tuple[str, int, int]]:
    """What tells a change to the files of the project dbt parses (as dagster-dbt starts it,
    DBT_PROJECT_DIR): their paths, sizes and times."""
    project_dir = Path(os.environ.get("DBT_PROJECT_DIR", os.getcwd()))
    return [
        (str(file), file.stat().st_size, file.stat().st_mtime_ns)
        for file in project_files(project_dir)
    ]


def hand_over(name: str) -> int | None:
    """Have the warm dbt `name` run this command with this process's environment, folder and
    standard streams; its exit code, or None when no warm dbt took the command."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        client.connect("\0" + name)
    except OSError:
        client.close()
        return None
    with client:
        warm, user, _ = _peer_credentials(client)
        if user != os.getuid():
            return None  # not a warm dbt of ours: the environment holds the pseudonyms' key
        request = {"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd()}
        try:
            socket.send_fds(client, [json.dumps(request).encode()], [0, 1, 2])
            taken = client.recv(1)
        except OSError:
            taken = b""
        if taken != _TAKEN:
            return None  # it ended before taking the command: run it here
        # dagster-dbt stops dbt with SIGINT (and a run being stopped may send SIGTERM): the
        # warm dbt gets them, and stops as dbt stops.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda number, _frame: _signal(warm, number))
        try:
            code = client.recv(1)
        except OSError:
            code = b""
    # dbt's process ending is what tells its caller the working database is free again.
    _wait_for_exit(warm)
    if not code:
        print(f"trustwh-dbt: the warm dbt (process {warm}) ended without an exit code")
        return 2
    return code[0]


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def _wait_for_exit(pid: int) -> None:
    """Wait for a process that is not our child to end."""
    try:
        descriptor = os.pidfd_open(pid)
    except OSError:  # gone already, or a kernel without pidfd: look for it until it is gone
        while _running(pid):
            time.sleep(0.01)
        return
    try:
        select.select([descriptor], [], [])
    finally:
        os.close(descriptor)


def _running(pid: int) -> bool:
    """Whether `pid` runs: a zombie, ended and not yet reaped, has let go of its files."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def serve(name: str) -> int:
    """Import dbt, parse the project with this process's environment, then run the one dbt
    command a `trustwh-dbt` hands over (`hand_over`), as if started by it."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind("\0" + name)  # bound at once: a command handed over early waits for us
    listener.listen(1)
    from dbt.cli.main import cli, dbtRunner

    parsed_with = parse_environment(dict(os.environ)), _project_state()
    try:
        parsed = dbtRunner().invoke(["parse"])
        manifest = parsed.result if parsed.success else None
    except Exception:  # the build parses again and reports what is wrong
        manifest = None
    while True:
        client, _ = listener.accept()
        if _peer_credentials(client)[1] == os.getuid():
            break
        client.close()  # another user's process: not ours to run dbt for
    listener.close()
    with client:
        message, descriptors, _, _ = socket.recv_fds(client, _MESSAGE, 3)
        request = json.loads(message)
        for descriptor, standard in zip(descriptors, (0, 1, 2), strict=True):
            os.dup2(descriptor, standard)
            os.close(descriptor)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = request["argv"]
        # Its parse is the build's when made with the build's settings, of the project as it
        # is now: else dbt parses again, as a dbt process started now would.
        if (parse_environment(request["env"]), _project_state()) != parsed_with:
            manifest = None
        client.sendall(_TAKEN)
        answered = threading.Event()
        threading.Thread(target=_end_with, args=(client, answered), daemon=True).start()
        try:
            cli.main(args=sys.argv[1:], prog_name="dbt", obj={"manifest": manifest})
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except BaseException:  # shown in the build's output, as dbt's would be
            traceback.print_exc()
            code = 2
        # The streams are the build's: let go of them before answering. `trustwh-dbt` exits
        # when this process has (and so closed the working database).
        sys.stdout.flush()
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_RDWR)
        for standard in (0, 1, 2):
            os.dup2(devnull, standard)
        answered.set()
        client.sendall(bytes([code & 0xFF]))
    return 0


def _end_with(client: socket.socket, answered: threading.Event) -> None:
    """End this process when the `trustwh-dbt` it builds for ends first (killed with its run):
    no dbt builds on holding the working database."""
    with contextlib.suppress(OSError):
        client.recv(1)
    if not answered.is_set():
        os._exit(1)


def _peer_credentials(client: socket.socket) -> tuple[int, int, int]:
    """The process id, user id and group id of the process at the other end."""
    size = struct.calcsize("3i")
    return struct.unpack("3i", client.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size))
