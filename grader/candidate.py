"""A candidate saturnd in its sandbox: launching it, finding its pipes, saying how it fared.

One :class:`Daemon` per scenario (so one crash fails one scenario): it starts from the
command template of :class:`DaemonConfig` (placeholders ``{saturnd} {pipes} {data} {home}
{user} {start_time}``), optionally under libfaketime, then finds its pipes where we asked
with ``{pipes}`` or wherever it put them: ``/tmp/$USER/saturnd/pipes`` inside its private
/tmp, its home, its working directory.  :meth:`Daemon.diagnosis` and
:meth:`Daemon.headline` turn its fate (statuses, output) into a failure's explanation.
"""

import glob
import os
import shlex
import shutil
import stat
import time
from dataclasses import dataclass

from saturnd import protocol as P

from . import sandbox_lock
from .sandbox import Sandbox

START_TIMEOUT = 10.0        # seconds for a daemon to make its pipes
DEFAULT_CMD = "{saturnd}"
DEFAULT_MANUAL_CMD = ("{saturnd} -f --clock manual --start-time {start_time} -p {pipes} "
                      "--data-dir {data}")


class Failed(Exception):
    def __init__(self, message, detail=""):
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass
class DaemonConfig:
    """How to start the candidate daemon, and how minutes pass for it."""

    options: object                 # sandbox.Options
    saturnd: str                    # the daemon's executable
    saturnd_cmd: str = DEFAULT_CMD
    manual_cmd: str | None = DEFAULT_MANUAL_CMD     # the command with --clock manual
    clock: str = "faketime"         # faketime, manual or real (grader.scheduling)
    speed: float = 20.0             # libfaketime speed-up
    precreate: bool = False         # make the pipes directory before starting it
    real_minutes: float = 0.0       # budget of real minutes for the clock "real"
    libfaketime: str | None = None


def utc(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _is_fifo(path):
    """A FIFO reached through no symlink (a candidate's link could point anywhere)."""
    try:
        return stat.S_ISFIFO(os.lstat(path).st_mode) and \
            os.path.realpath(path) == os.path.abspath(path)
    except OSError:
        return False


class Daemon:
    """One candidate daemon in its sandbox."""

    def __init__(self, options, config, label, clock="system", start_time=None):
        self.config = config
        self.sb = Sandbox(options, label)
        self.clock = clock
        self.start_time = start_time
        self.pipes = None
        self.log_path = os.path.join(self.sb.meta, "daemon.log")

    def argv(self):
        values = {"saturnd": self.config.saturnd, "pipes": self.sb.pipes, "data": self.sb.data,
                  "home": self.sb.home, "user": self.sb.user,
                  "start_time": str(self.start_time or int(time.time()) // 60 * 60)}
        template = self.config.saturnd_cmd
        if self.clock == "manual" and self.config.manual_cmd:
            template = self.config.manual_cmd
        try:
            return [part.format(**values) for part in shlex.split(template)]
        except (KeyError, IndexError, ValueError) as e:
            raise Failed(f"bad daemon command template {template!r}: {e}") from None

    def start(self):
        self.made = []
        if self.sb.box is None and not self.sb.private_tmp:
            # the shared /tmp (light isolation): one such daemon on the machine at a time,
            # the stale pipes of a killed grade removed (grader/sandbox_lock.py)
            sandbox_lock.acquire(self.sb.user, self.sb.options.uid)
            self.locked = True
            # remove afterwards only what did not exist
            d = "/tmp"
            for part in (self.sb.user, "saturnd", "pipes"):
                d = os.path.join(d, part)
                if not os.path.lexists(d):
                    self.made.append(d)
                    break
            # a daemon whose user name came out longer (a getlogin_r buffer read past its
            # end): /tmp/<USER><bytes>/saturnd/pipes, looked for among the folders it makes
            self.tmp_before = set(self._user_like_tmp())
        if getattr(self.config, "precreate", False):
            # for daemons that expect their pipes directory to exist already
            for d in (self.sb.pipes, self.sb.host_path(P.default_pipes_dir(self.sb.user))):
                os.makedirs(d, 0o700, exist_ok=True)
                self.sb.grant(d)
            if self.sb.box is None:
                self.sb.grant(self.sb.root)
        env = self.sb.env()
        if self.clock == "faketime":
            env["LD_PRELOAD"] = self.config.libfaketime
            env["FAKETIME"] = f"@{utc(self.start_time)} x{self.config.speed:g}"
        open(self.log_path, "wb").close()
        self.sb.start(self.argv(), env, self.log_path, self.log_path, mode="daemon")
        self.pipes = self.wait_for_pipes()

    def candidates(self):
        sb = self.sb
        dirs = [sb.pipes]
        dirs += glob.glob(os.path.join(sb.tmp, "*", "saturnd", "pipes"))
        if sb.box is not None:          # the container's /tmp/candidate/saturnd/pipes
            dirs.append(os.path.join(sb.box.default_saturnd, "pipes"))
        elif not sb.private_tmp:
            dirs.append(P.default_pipes_dir(sb.user))
            for top in set(self._user_like_tmp()) - getattr(self, "tmp_before", set()):
                dirs.append(os.path.join(top, "saturnd", "pipes"))
                if top not in self.made:
                    self.made.append(top)       # the daemon's: removed afterwards
        for top in (sb.tmp, sb.home, sb.work, sb.data):
            for depth in range(0, 5):
                pattern = os.path.join(top, *(["*"] * depth), P.REQUEST_PIPE)
                dirs += [os.path.dirname(p) for p in glob.glob(pattern)]
        return dirs

    def _user_like_tmp(self):
        return glob.glob(os.path.join("/tmp", glob.escape(self.sb.user) + "?*"))

    def wait_for_pipes(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for d in self.candidates():
                if _is_fifo(os.path.join(d, P.REQUEST_PIPE)) and \
                        _is_fifo(os.path.join(d, P.REPLY_PIPE)):
                    return d
            if not self.sb.alive():
                raise Failed("the daemon exited before making its pipes"
                             f" ({self.sb.main_status() or 'no status'})", self.diagnosis())
            if time.monotonic() > deadline:
                raise Failed(f"the daemon made no saturnd-request-pipe/saturnd-reply-pipe "
                             f"within {START_TIMEOUT:g} s (looked in {self.sb.pipes} and "
                             f"/tmp/$USER/saturnd/pipes, home, working directory)",
                             self.diagnosis())
            time.sleep(0.02)

    def log_tail(self, n=10):
        from .container import read_box_file
        text = read_box_file(self.log_path)[-4096:].decode("utf-8", "replace")
        return text.splitlines()[-n:]

    def headline(self):
        """A few words on the daemon's fate, for a failure's one-line message."""
        if self.sb.proc is None:
            return ""
        crashes = [s.split(" ", 1)[1] if not s.startswith("main ") else s.split(" ", 2)[2]
                   for s in self.sb.statuses() if "signal" in s]
        if crashes:
            return f" -- a daemon process was {crashes[0]}"
        if not self.sb.alive():
            return " -- the daemon is no longer running"
        return ""

    def diagnosis(self):
        lines = []
        if self.pipes:
            inside = ""
            if self.sb.private_tmp and self.pipes.startswith(self.sb.tmp + "/"):
                inside = f" (the daemon's /tmp{self.pipes[len(self.sb.tmp):]})"
            lines.append(f"pipes: {self.pipes}{inside}")
        alive = self.sb.alive()
        lines.append("daemon processes: " + ("still running" if alive else "none left"))
        ended = [s for s in self.sb.statuses() if not s.startswith("started")]
        if ended:
            lines.append("ended processes: " + "; ".join(ended[-6:]))
        tail = self.log_tail()
        if tail:
            lines.append("daemon output (last lines):")
            lines += ["  " + ln for ln in tail]
        return "\n".join(lines)

    def stop(self):
        self.sb.kill()
        for d in getattr(self, "made", []):
            shutil.rmtree(d, ignore_errors=True)
        if getattr(self, "locked", False):
            self.locked = False
            sandbox_lock.release()
        if self.sb.box is not None:
            self.sb.box.clean_default_pipes()
        self.sb.remove()
