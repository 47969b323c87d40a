"""Confinement of candidate programs.

Every candidate process (a client for one golden case, a daemon for one scenario)
gets its own sandbox directory with ``home/``, ``tmp/``, ``work/`` (its working
directory) and ``data/``, its own user name (``USER``/``LOGNAME``), ``HOME`` and
``TMPDIR``, rlimits (address space, processes, CPU time, file size, open files,
no core dumps) and -- when the grader runs as root -- the uid/gid of ``nobody``.

Full isolation (root and a working ``unshare``): new PID, mount and network
namespaces; the sandbox's ``tmp/`` is bind-mounted on ``/tmp`` (so a daemon that
hard-codes ``/tmp/$USER/saturnd/pipes`` puts its pipes in the sandbox, where the
grader finds them); no network (only a down loopback); killing the namespace's
init kills every process the candidate made, detached or not.

Light isolation (not root, or no namespaces, e.g. an unprivileged container):
the same directories, names, limits and uid drop where possible; the candidate's
processes are found and killed by a token in their environment.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
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

_probe_cache = {}


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
    """True when ``unshare`` can make PID, mount and network namespaces here."""
    if "ns" not in _probe_cache:
        ok = False
        if os.geteuid() == 0 and shutil.which("unshare"):
            try:
                ok = subprocess.run(
                    ["unshare", "--pid", "--fork", "--mount", "--net", "--mount-proc",
                     "--kill-child", "true"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, timeout=10).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        _probe_cache["ns"] = ok
    return _probe_cache["ns"]


def default_ids():
    """(uid, gid) candidates run as: nobody when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None, None
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


# A grading run as root gives its candidates a uid of their own, unused on this machine,
# so that RLIMIT_NPROC (counted per uid, machine-wide) is theirs alone: grades run in
# parallel (``batch -j N``, CI shards on one host) or anything else running as ``nobody``
# cannot exhaust it for them. Inside the mount namespace that uid has a passwd entry
# (CANDIDATE_NAME): a candidate that asks ``getpwuid()`` for its name gets one.
UID_BASE = int(os.environ.get("GRADER_UID_BASE", "1500000000"))
UID_COUNT = 4096
CANDIDATE_NAME = "candidate"
_LOCK_DIRS = ("/run/saturnd-grade-uids", "/var/lib/saturnd-grade-uids")


def _uid_lock_dir():
    """A directory only root can write, for the uid locks (None: none usable)."""
    for path in _LOCK_DIRS:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            st = os.lstat(path)
        except OSError:
            continue
        import stat
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return path
    return None


def _uid_in_use(uid):
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    return True
            except OSError:
                pass
    return False


def allocate_uid():
    """(uid, lock fd): a uid with no passwd entry and no process, held by an ``flock`` on
    its lock file for as long as the fd stays open (this grading run); None if none."""
    import fcntl
    where = _uid_lock_dir()
    if where is None:
        return None
    start = os.getpid() % UID_COUNT         # spread concurrent runs over the range
    for i in range(UID_COUNT):
        uid = UID_BASE + (start + i) % UID_COUNT
        try:
            pwd.getpwuid(uid)
            continue                        # someone's real account
        except KeyError:
            pass
        fd = os.open(os.path.join(where, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue                        # another grading run has it
        if _uid_in_use(uid):                # left over by a run that was killed
            os.close(fd)
            continue
        return uid, fd
    return None


def write_passwd(directory, uid, gid):
    """Copies of /etc/passwd and /etc/group with the candidate's entry, for the sandbox's
    mount namespace; returns their paths."""
    out = {}
    for name, line in (("passwd", f"{CANDIDATE_NAME}:x:{uid}:{gid}:grader candidate:"
                                  f"/nonexistent:/bin/sh\n"),
                       ("group", f"{CANDIDATE_NAME}:x:{gid}:\n")):
        try:
            with open(f"/etc/{name}", encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text + line)
        os.chmod(path, 0o644)
        out[name] = path
    return out


class UidLease:
    """A uid held for one grading run (its lock file's fd), with its passwd copies."""

    def __init__(self, uid, fd, etc):
        self.uid, self.fd, self.etc = uid, fd, etc

    @classmethod
    def take(cls, base):
        got = allocate_uid()
        if got is None:
            return None
        uid, fd = got
        import tempfile
        try:
            os.makedirs(base, exist_ok=True)
            etc = tempfile.mkdtemp(prefix="saturnd-grade-etc-", dir=base)
            os.chmod(etc, 0o755)
            return cls(uid, fd, write_passwd(etc, uid, uid))
        except OSError:
            os.close(fd)
            return None

    def release(self):
        if self.fd is not None:
            shutil.rmtree(os.path.dirname(self.etc["passwd"]), ignore_errors=True)
            os.close(self.fd)
            self.fd = None

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass


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


class Options:
    """How candidates are confined (shared by all sandboxes of one grading run)."""

    def __init__(self, base=None, isolation="auto", uid="auto", limits=None, tz=None):
        self.base = base or os.environ.get("GRADER_WORK_DIR") or "/var/tmp"
        self.tz = tz or os.environ.get("TZ") or "UTC"
        if isolation == "auto":
            isolation = "full" if namespaces_available() else "light"
        if isolation == "full" and not namespaces_available():
            raise RuntimeError("full isolation needs root and working PID/mount/network "
                               "namespaces (unshare)")
        self.isolation = isolation
        self.etc = None             # {"passwd": path, "group": path} bound in the sandbox
        self._lease = None
        if uid == "auto":
            self.uid, self.gid = default_ids()
            if self.uid is not None and isolation == "full":
                self._own_uid()
        elif uid is None:
            self.uid = self.gid = None
        else:
            self.uid, self.gid = uid, uid
        self.limits = dict(DEFAULT_LIMITS, **(limits or {}))
        self.user = CANDIDATE_NAME if self.etc else passwd_name(self.uid)

    def _own_uid(self):
        """This run's own uid (see UID_BASE); nobody's when none can be had."""
        lease = UidLease.take(self.base)
        if lease is not None:
            self._lease = lease          # shared by copies (ClientJail); freed once
            self.etc = lease.etc
            self.uid = self.gid = lease.uid

    def close(self):
        """Give this run's uid back and remove its passwd copies (also done when the last
        reference goes)."""
        if self._lease is not None:
            self._lease.release()

    def describe(self):
        who = f"uid {self.uid}" if self.uid is not None else f"uid {os.geteuid()} (not root)"
        if self.isolation == "full":
            return (f"full: PID/mount/network namespaces, private /tmp, {who}, rlimits "
                    f"(memory {self.limits['RLIMIT_AS'] // MiB} MiB, "
                    f"{self.limits['RLIMIT_NPROC']} processes, "
                    f"{self.limits['RLIMIT_CPU']} s CPU)")
        return (f"light: own USER/HOME/TMPDIR and working directory, {who}, rlimits; no "
                f"namespaces (not root, or unshare refused): the grader does not cut the network "
                f"(run the container with --network none), /tmp shared")


class Sandbox:
    """One candidate's confinement: directories, identity, one command at a time."""

    def __init__(self, options, label, private_tmp=True):
        self.options = options
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
        self.shm = os.path.join(self.root, "shm")
        for d in (self.root, self.home, self.tmp, self.work, self.data, self.shm):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.root, 0o755)
        os.chmod(self.tmp, 0o1777)
        os.chmod(self.shm, 0o1777)
        self.private_tmp = private_tmp and options.isolation == "full"
        self.status_file = os.path.join(self.root, ".status")
        chown_tree(self.root, options.uid, options.gid)
        self.proc = None
        self.launched = None

    # -- what the candidate sees -------------------------------------------------
    @property
    def visible_tmp(self):
        """``TMPDIR`` as seen by the candidate."""
        return "/tmp" if self.private_tmp else self.tmp

    def host_path(self, path):
        """A path the candidate used, as seen from the grader."""
        if self.private_tmp and (path == "/tmp" or path.startswith("/tmp/")):
            return self.tmp + path[4:]
        return path

    def env(self, extra=None):
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
        """The argv that runs ``argv`` confined (through the init)."""
        private_tmp = self.private_tmp if private_tmp is None else private_tmp
        cfg = {
            "argv": [os.fsdecode(a) for a in argv],
            "env": {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()},
            "cwd": cwd or self.work, "uid": self.options.uid, "gid": self.options.gid,
            "limits": self.options.limits, "status": self.status_file, "mode": mode,
            "token": self.token,
            "private_tmp": self.tmp if private_tmp else None,
            "private_shm": self.shm if private_tmp else None,
            "etc": self.options.etc if self.options.isolation == "full" else None,
        }
        init = [sys.executable, "-I", "-S", INIT, json.dumps(cfg)]
        # if the grader itself is killed, its direct child gets SIGKILL too (and with it
        # the whole PID namespace: unshare --kill-child)
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if pdeathsig_available() else []
        if self.options.isolation == "full":
            return guard + ["unshare", "--pid", "--fork", "--kill-child", "--mount",
                            "--mount-proc", "--net", "--propagation", "private", "--"] + init
        return guard + init

    def start(self, argv, env, stdout, stderr, mode="daemon"):
        self.launched = time.time()
        self.proc = subprocess.Popen(self.command(argv, env, mode), stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=stderr, env=_init_env(),
                                     start_new_session=True)
        return self.proc

    def alive(self):
        """Is any process of the candidate left?"""
        return self.proc is not None and self.proc.poll() is None

    def statuses(self):
        try:
            with open(self.status_file, encoding="utf-8", errors="replace") as f:
                return [line.rstrip("\n") for line in f]
        except OSError:
            return []

    def main_status(self):
        for line in self.statuses():
            if line.startswith("main "):
                return line.split(" ", 2)[2]
        return None

    def kill(self):
        """Kill everything the candidate started (idempotent)."""
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

    def private_tmp(self, on):
        """Give the client the sandbox's tmp/ as its /tmp (full isolation only); returns
        that directory as seen from here, or None (the client shares /tmp)."""
        if not on or self.sandbox.options.isolation != "full":
            return None
        self.use_private_tmp = True
        return self.sandbox.tmp

    def env(self, env):
        out = {os.fsencode(k): os.fsencode(v) for k, v in self.sandbox.env().items()}
        for k in (b"TZ",):
            if k in env:
                out[k] = env[k]
        return out

    def grant(self, path):
        self.sandbox.grant(path)

    def wrap(self, argv, env):
        return (self.sandbox.command(argv, env, "client", private_tmp=self.use_private_tmp),
                _init_env())

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
        kill_token(self.sandbox.token)
        self.sandbox.remove()
