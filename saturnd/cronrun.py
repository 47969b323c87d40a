"""What a task's cron attributes change in its runs (crontab environment lines, cron's rule):

- the environment: the daemon's (minus ``SATURND_*``), then the task's ``NAME=value``
  settings over it, in order (``SHELL``, ``PATH``, ``HOME``, ``MAILTO`` and any other);
- the directory: a task whose settings give ``HOME`` starts there, as cron starts every
  job in ``HOME`` (the others start in the daemon's directory, the user's home);
- mail: a task whose ``MAILTO`` is set and not empty has the output of each run that
  wrote something (stdout, then stderr) mailed to it through the machine's ``sendmail``
  (``/usr/sbin/sendmail``, ``/usr/lib/sendmail``, or on ``PATH``); without one, or when
  sending fails, the task's error log says so.  ``MAILTO=""`` (or no MAILTO): no mail.

The shell itself is the task's command line: crontab import makes it ``SHELL -c COMMAND``.
"""

import os
import shutil
import socket
import threading

from . import errlog

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Callable, Mapping

    from .store import Task
    from .timing import CronSpec

MAIL_CAP = 1 << 20          # bytes of each stream put in a mail
SENDMAIL_PATHS = ("/usr/sbin/sendmail", "/usr/lib/sendmail")
SENDMAIL_TIMEOUT = 120
# HOME set: start there (posix_spawn has no chdir); "$0" "$@" are the task's own argv
_IN_HOME = b'cd -- "$HOME" || exit 1; exec "$0" "$@"'


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else os.fsencode(text)


def task_environment(base: "Mapping[bytes, bytes] | Mapping[str, str]",
                     cron: "CronSpec") -> "Mapping[bytes, bytes] | Mapping[str, str]":
    """The environment of a run: ``base`` (the runner's) with the task's settings over it."""
    if not cron.env:
        return base
    env = {_bytes(k): _bytes(v) for k, v in base.items()}
    for name, value in cron.env:
        env[name] = value
    return env


def task_argv(argv: tuple[bytes, ...], cron: "CronSpec") -> tuple[bytes, ...]:
    """The argv to spawn: the task's, started in ``HOME`` when its settings give one."""
    if b"HOME" not in cron.environ():
        return argv
    return (b"/bin/sh", b"-c", _IN_HOME) + tuple(argv)


def sendmail_path() -> str | None:
    for path in SENDMAIL_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sendmail")


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(MAIL_CAP)
    except OSError:
        return b""


def mail_output(task: "Task", when: int, exitcode: int, out_path: str, err_path: str,
                log: "Callable[[str], object]", errors: "errlog.ErrorLog" = errlog.NONE) -> None:
    """Mail a finished run's output to the task's MAILTO (read now, sent by a thread);
    a failure is recorded in the task's error log ``errors``."""
    to = task.cron.environ().get(b"MAILTO")
    if not to:
        return
    output = _head(out_path) + _head(err_path)
    if not output:
        return
    sendmail = sendmail_path()
    if sendmail is None:
        errors.add_task(task.taskid, "MAILTO is set but this machine has no sendmail: the "
                        "output was not mailed")
        return
    user = os.environb.get(b"USER") or str(os.geteuid()).encode()
    command = b" ".join(task.argv)[:200]
    message = (b"To: " + to + b"\nSubject: Cron <" + user + b"@" + socket.gethostname().encode()
               + b"> " + command.replace(b"\n", b" ") + b"\nX-Saturnd-Task: %d\n"
               b"X-Saturnd-Exit-Code: %d\nContent-Type: text/plain; charset=UTF-8\n\n"
               % (task.taskid, exitcode) + output)
    addresses = [a for a in to.replace(b",", b" ").split() if a]
    threading.Thread(target=_send, args=(sendmail, addresses, message, task.taskid, log, errors),
                     name="mail", daemon=True).start()


def _send(sendmail: str, addresses: list[bytes], message: bytes, taskid: int,
          log: "Callable[[str], object]", errors: "errlog.ErrorLog") -> None:
    import subprocess
    try:
        res = subprocess.run([sendmail, "-i", "--", *addresses], input=message,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             timeout=SENDMAIL_TIMEOUT)
        if res.returncode:
            raise OSError(f"{sendmail} exited with {res.returncode}: "
                          f"{res.stderr[:200].decode('utf-8', 'replace').strip()}")
        log(f"mail: task {taskid}: output mailed")
    except (OSError, subprocess.SubprocessError) as e:
        log(f"mail: task {taskid}: {e}")
        errors.add_task(taskid, f"mailing the output failed: {e}")
