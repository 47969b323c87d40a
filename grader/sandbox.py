"""Confinement of candidate programs.

Every candidate process (a client for one golden case, a daemon for one scenario, the
build) gets its own sandbox directory with ``home/``, ``tmp/``, ``work/`` (its working
directory) and ``data/``, its own user name (``USER``/``LOGNAME``) and ``HOME``, rlimits,
and is started through the kit's tiny init (grader/sandbox_init.py), which reaps, records
how every process ended and kills everything the candidate started.

Two isolations (``--isolation``):

- **container** (the default when a Docker engine answers): the submission's own throwaway
  container (:mod:`grader.container`): no network, no capabilities, no-new-privileges,
  read-only image, cgroup limits, an unprivileged uid named ``candidate``, nothing of the
  host but the box; the kit stays outside and drives the candidates through FIFOs in the
  box.
- **light** (no engine, or asked): NOTHING IS ISOLATED -- for a student grading their own
  code: the candidate runs on the host as the caller (as ``nobody`` when the caller is
  root), with its own directories, environment and rlimits; its processes are found and
  killed through a token in their environment.  ``batch`` refuses it unless ``--trusted``.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

# the sandbox's first process (PID 1 under full isolation): grader/sandbox_init.py
INIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_init.py")
MiB = 1 << 20

DEFAULT_LIMITS = {
    "RLIMIT_AS": 2048 * MiB,      # bounded memory
    "RLIMIT_NPROC": 256,          # fork bombs (counted per uid)
    "RLIMIT_CPU": 120,            # seconds of CPU time
    "RLIMIT_FSIZE": 256 * MiB,    # output floods
    "RLIMIT_NOFILE": 1024,
    "RLIMIT_CORE": 0,
}

_probe_cache: dict[str, bool] = {}


def pdeathsig_available():
    """Can ``setpriv --pdeathsig`` (util-linux >= 2.33) guard our children?"""
    if "pdeathsig" not in _probe_cache:
        ok = False
        if shutil.which("setpriv"):
            try:
                ok = subprocess.run(["setpriv", "--pdeathsig", "KILL", "--", "true"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        _probe_cache["pdeathsig"] = ok
    return _probe_cache["pdeathsig"]


def namespaces_available():
    """The namespace sandbox is gone (containers isolate): always False."""
    return False


def default_ids():
    """(uid, gid) candidates run as: nobody when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None, None
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


CANDIDATE_NAME = "candidate"


def chown_tree(path, uid, gid):
    if uid is None:
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)
            except OSError:
                pass


def passwd_name(uid):
    """The passwd name of the uid candidates run as (``USER`` in the sandbox equals what
    ``getpwuid()`` tells the candidate)."""
    uid = os.geteuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


ISOLATIONS = {"auto": "auto", "container": "container", "light": "light",
              "full": "container"}       # "full" (the namespace sandbox) is now a container


class Options:
    """How candidates are confined (shared by all sandboxes of one grading run).

    With ``isolation`` container (``auto`` when an engine answers, unless
    ``GRADER_ISOLATION`` says otherwise), the run's box is the one named by ``GRADER_BOX``
    (made by ``batch`` or ``ci/grade.sh``, which built the submission in it) or a fresh one
    under ``base``, removed by :meth:`close`."""

    def __init__(self, base=None, isolation="auto", uid="auto", limits=None, tz=None,
                 label="grade"):
        from . import container
        self.base = base or os.environ.get("GRADER_WORK_DIR") or "/var/tmp"
        self.tz = tz or os.environ.get("TZ") or "UTC"
        if isolation == "auto":
            isolation = os.environ.get("GRADER_ISOLATION") or "auto"
        if isolation not in ISOLATIONS:
            raise RuntimeError(f"unknown isolation {isolation!r} (container or light)")
        isolation = ISOLATIONS[isolation]
        self.box = None
        self.why_light = None
        if isolation in ("auto", "container"):
            try:
                if os.environ.get("GRADER_BOX"):
                    self.box = container.Box.attach(os.environ["GRADER_BOX"])
                else:
                    self.box = container.Box.create(self.base, label)
                isolation = "container"
            except container.NoEngine as e:
                if isolation == "container":
                    raise RuntimeError(f"container isolation: {e}") from None
                isolation, self.why_light = "light", str(e)
        self.isolation = isolation
        self.lock = threading.Lock()    # the container's /tmp/candidate/saturnd: one user
        if self.box is not None:
            self.base = self.box.root
            self.uid, self.gid = self.box.uid, self.box.gid
            self.limits = dict(container.DEFAULT_RLIMITS, **(limits or {}))
            self.user = self.box.user
            # the kit's own temporary folders (a golden case's pipes) must be in the box
            tempfile.tempdir = self.box.host_tmp
            return
        if uid == "auto":
            self.uid, self.gid = default_ids()
        elif uid is None:
            self.uid = self.gid = None
        else:
            self.uid, self.gid = uid, uid
        self.limits = dict(DEFAULT_LIMITS, **(limits or {}))
        self.user = passwd_name(self.uid)

    def close(self):
        """The run's container removed and its box deleted (when this run made them)."""
        if self.box is not None:
            if tempfile.tempdir == self.box.host_tmp:
                tempfile.tempdir = None
            self.box.remove()

    def describe(self):
        if self.box is not None:
            return self.box.describe()
        who = f"uid {self.uid}" if self.uid is not None else f"uid {os.geteuid()}"
        why = f" ({self.why_light})" if self.why_light else ""
        return (f"light: NOTHING IS ISOLATED{why}: the candidate runs on this machine as "
                f"{who}, with its own USER/HOME/TMPDIR, working directory and rlimits; it "
                f"shares the network, /tmp and whatever {who} can read -- grade only code "
                f"you trust (your own)")


class Sandbox:
    """One candidate's confinement: directories, identity, one command at a time."""

    def __init__(self, options, label, private_tmp=True):
        self.options = options
        self.box = options.box
        os.makedirs(options.base, exist_ok=True)
        self.token = uuid.uuid4().hex[:12]
        safe = "".join(c if c.isalnum() else "-" for c in label)[:40]
        self.root = os.path.join(options.base, f"grade-{safe}-{self.token}")
        self.user = options.user
        self.home = os.path.join(self.root, "home")
        self.tmp = os.path.join(self.root, "tmp")
        self.work = os.path.join(self.root, "work")
        self.data = os.path.join(self.root, "data")
        self.pipes = os.path.join(self.root, "pipes")
        for d in (self.root, self.home, self.tmp, self.work, self.data):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.tmp, 0o1777)
        self.private_tmp = False        # a container's /tmp is the submission's own
        # the kit's files about the candidate (status lines, logs) are in a folder of the kit
        # beside the candidate's, which it can neither replace nor link elsewhere
        self.meta = self.root
        if self.box is not None:
            self.meta = os.path.join(options.base, f"kit-{safe}-{self.token}")
            os.makedirs(self.meta, 0o755)
            os.chmod(self.meta, 0o755)
        self.status_file = os.path.join(self.meta, ".status")
        chown_tree(self.root, options.uid, options.gid)
        self.proc = None
        self.launched = None

    # -- what the candidate sees -------------------------------------------------
    @property
    def visible_tmp(self):
        """``TMPDIR`` as seen by the candidate."""
        return "/tmp" if self.box is not None else self.tmp

    def host_path(self, path):
        """A path the candidate used, as seen from the grader."""
        if self.box is not None:
            inside = f"/tmp/{self.box.user}/saturnd"
            if path == inside or path.startswith(inside + "/"):
                return self.box.default_saturnd + path[len(inside):]
        return path

    def env(self, extra=None):
        if self.box is not None:
            env = self.box.env(self.home, self.options.tz)
        else:
            env = {
                "PATH": os.environ.get("GRADER_CANDIDATE_PATH", "/usr/local/bin:/usr/bin:/bin"),
                "HOME": self.home, "USER": self.user, "LOGNAME": self.user,
                "TMPDIR": self.visible_tmp, "TZ": self.options.tz, "LANG": "C.UTF-8",
                "GRADER_SANDBOX": self.token,
            }
        env.update(extra or {})
        return env

    def grant(self, path):
        chown_tree(path, self.options.uid, self.options.gid)

    # -- running -------------------------------------------------------------------
    def command(self, argv, env, mode, private_tmp=None, cwd=None):
        """The argv that runs ``argv`` confined through the init (light isolation)."""
        if self.box is not None:
            raise RuntimeError("a container's programs start with launch(), not a command")
        cfg = {
            "argv": [os.fsdecode(a) for a in argv],
            "env": {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()},
            "cwd": cwd or self.work, "uid": self.options.uid, "gid": self.options.gid,
            "limits": self.options.limits, "status": self.status_file, "mode": mode,
            "token": self.token,
        }
        init = [sys.executable, "-I", "-S", INIT, json.dumps(cfg)]
        # if the grader itself is killed, its direct child gets SIGKILL too
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if pdeathsig_available() else []
        return guard + init

    def launch(self, argv, env, mode, stdout=None, stderr=None, cwd=None):
        """Start ``argv`` confined; a Popen-like object (``poll``, ``wait``, ``kill``,
        ``returncode``).  ``stdout``/``stderr``: a path (the output goes there as it comes)
        or a file object (filled when the program has ended, in a container), or None."""
        self.launched = time.time()
        if self.box is None:
            files = [open(x, "ab") if isinstance(x, str) else x for x in (stdout, stderr)]
            try:
                return subprocess.Popen(
                    self.command(argv, env, mode, cwd=cwd), stdin=subprocess.DEVNULL,
                    stdout=files[0] if files[0] is not None else subprocess.DEVNULL,
                    stderr=files[1] if files[1] is not None else subprocess.DEVNULL,
                    env=_init_env(), start_new_session=True)
            finally:
                for given, f in zip((stdout, stderr), files):
                    if isinstance(given, str):
                        f.close()
        from .container import box_file
        paths, outputs = [], []
        for name, x in (("out", stdout), ("err", stderr)):
            if isinstance(x, str):
                if x not in paths:
                    box_file(x, self.options.uid, self.options.gid)   # empty, the candidate's
                paths.append(x)
            elif x is not None:
                path = os.path.join(self.meta, f".{name}-{uuid.uuid4().hex[:8]}")
                box_file(path, self.options.uid, self.options.gid)
                paths.append(path)
                outputs.append((path, x))
            else:
                paths.append(None)
        return self.box.launch(argv, env, cwd or self.work, self.status_file, mode=mode,
                               stdout=paths[0], stderr=paths[1], rlimits=self.options.limits,
                               outputs=outputs)

    def start(self, argv, env, stdout, stderr, mode="daemon"):
        self.proc = self.launch(argv, env, mode, stdout, stderr)
        return self.proc

    def alive(self):
        """Is any process of the candidate left?"""
        return self.proc is not None and self.proc.poll() is None

    def statuses(self):
        from .container import read_box_file
        text = read_box_file(self.status_file, 1 << 20).decode("utf-8", "replace")
        return text.splitlines()

    def main_status(self):
        for line in self.statuses():
            if line.startswith("main "):
                return line.split(" ", 2)[2]
        return None

    def kill(self):
        """Kill everything the candidate started (idempotent)."""
        if self.box is not None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            return
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)   # init kills the rest first
            except OSError:
                pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
        kill_token(self.token)

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)
        if self.meta != self.root:
            shutil.rmtree(self.meta, ignore_errors=True)


def _init_env():
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def kill_token(token):
    needle = b"GRADER_SANDBOX=" + token.encode() + b"\0"
    for _ in range(5):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle not in f.read() + b"\0":
                        continue
                os.kill(int(name), signal.SIGKILL)
                found = True
            except OSError:
                pass
        if not found:
            return


CLIENT_FSIZE = 32 * MiB     # a golden case's output is read into memory: keep it small


class ClientJail:
    """Adapter for :func:`grader.golden.run_case`: one golden case's client."""

    def __init__(self, options, tmp, user):
        import copy
        options = copy.copy(options)
        options.limits = dict(options.limits, RLIMIT_FSIZE=CLIENT_FSIZE)
        self.sandbox = Sandbox(options, f"client-{user}", private_tmp=False)
        self.user = user
        self.login = self.sandbox.user
        self.use_private_tmp = False
        self.locked = None
        self.light_locked = False
        self.proc = None

    def private_tmp(self, on):
        """For a case with the default pipes directory (``/tmp/$USER/saturnd/pipes``): in
        a container, where that directory is seen from here (one such case at a time);
        None in light isolation (the client shares /tmp)."""
        box = self.sandbox.box
        if on and box is None and not self.light_locked:
            # the machine's /tmp/<user>/saturnd/pipes: one such client at a time on the
            # machine, stale pipes of a killed grade removed (grader/sandbox_lock.py)
            from . import sandbox_lock
            sandbox_lock.acquire(self.sandbox.user, self.sandbox.options.uid)
            self.light_locked = True
        if not on or box is None:
            return None
        if self.locked is None:
            self.locked = self.sandbox.options.lock
            self.locked.acquire()
            box.clean_default_pipes()
        self.use_private_tmp = True
        return box.tmproot

    def env(self, env):
        out = {os.fsencode(k): os.fsencode(v) for k, v in self.sandbox.env().items()}
        for k in (b"TZ",):
            if k in env:
                out[k] = env[k]
        return out

    def grant(self, path):
        self.sandbox.grant(path)

    def wrap(self, argv, env):
        """The command and environment that start the client (light isolation only)."""
        return (self.sandbox.command(argv, env, "client"), _init_env())

    def launch(self, argv, env, stdout=None, stderr=None, cwd=None):
        """Start the client, non-blocking; returns a Popen-like object: ``poll()``,
        ``wait(timeout)`` (raises ``subprocess.TimeoutExpired``), ``kill()`` (the client and
        everything it started), ``returncode`` (128 + N for a signal).  ``stdout``/``stderr``:
        file objects (filled when the client has ended) or paths; stdin is /dev/null; ``cwd``
        defaults to the sandbox's ``work/``.  In the submission's container when there is
        one (:mod:`grader.container`), else on this machine (light isolation)."""
        self.proc = self.sandbox.launch(argv, env, "client", stdout, stderr, cwd=cwd)
        return self.proc

    def note(self, code):
        status = self.sandbox.main_status()
        if status and "signal" in status:
            return f" ({status})"
        return ""

    def elapsed(self):
        """Seconds the client itself ran (from its start by the init to its end), or None."""
        for line in self.sandbox.statuses():
            if line.startswith("ran "):
                try:
                    return float(line.split()[1])
                except (IndexError, ValueError):
                    return None
        return None

    def close(self):
        if self.sandbox.box is not None:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        else:
            kill_token(self.sandbox.token)
        self.sandbox.remove()
        if self.locked is not None:
            self.sandbox.box.clean_default_pipes()
            self.locked.release()
            self.locked = None
        if self.light_locked:
            from . import sandbox_lock
            self.light_locked = False
            sandbox_lock.release()
