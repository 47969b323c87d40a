"""One throwaway container per submission: its build and every program its grade runs.

The kit stays on the host; the candidate's programs run in a container of their own, made
through the Docker SDK (the ``docker`` package: ``pip install 'saturnd[grade]'``) from the
candidate image (default ``saturnd-grader:ci``, :envvar:`GRADER_CANDIDATE_IMAGE`):

- no network, every capability dropped, ``no-new-privileges`` (setuid bits do nothing), the
  image read-only, a size-limited tmpfs on ``/tmp``, the kit's own files in the image hidden
  under an empty tmpfs, memory (no swap beyond it), process count and CPU limited by the
  engine's cgroups (:data:`DEFAULT_LIMITS`, ``GRADER_MEMORY`` ``GRADER_PIDS`` ``GRADER_CPUS``
  ``GRADER_TMP_SIZE``);
- writable besides /tmp: only the *box*, a scratch folder of the host bind-mounted at the
  same path, which holds the copy of the submission (plain files, owned by the candidate's
  uid) and the candidates' working folders and pipes; never a folder of the teacher, never
  the golden cases, the scenarios' expectations or the kit's process (the kit drives the
  container from outside: the fake daemon and the driver client run on the host, over
  FIFOs in the box);
- every program runs as the unprivileged candidate uid (:data:`CANDIDATE_UID` when the kit
  is root, else the kit's own uid), named ``candidate`` by the container's own
  ``/etc/passwd``, through one ``exec`` of the kit's tiny init (grader/sandbox_init.py,
  copied into the box where the candidate can read but not change it): own session, subreaper, status lines, its login uid set so that
  ``getlogin()`` answers ``candidate`` as in a login session;
- the environment is only PATH, HOME, USER, LOGNAME, TZ, LANG (plus libfaketime's two
  variables for a daemon under accelerated time);
- when the grade ends the container is removed (with everything it started) and the box
  deleted.

:class:`Box` is one such container and its box; :meth:`Box.launch` starts a program in it
and returns a Popen-like :class:`Exec` (``poll``, ``wait(timeout)``, ``kill``,
``returncode``).  A grading process started by ``batch`` or ``ci/grade.sh`` attaches to the
box that built the submission (``GRADER_BOX``, see :meth:`Box.handle`).
"""

import errno
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only
    from collections.abc import Iterable, Mapping, Sequence
    from typing import IO, Any

HERE = os.path.dirname(os.path.abspath(__file__))
INIT_HOST = os.path.join(HERE, "sandbox_init.py")   # copied into each box (read-only there)
IMAGE = os.environ.get("GRADER_CANDIDATE_IMAGE") or os.environ.get("GRADER_IMAGE") \
    or "saturnd-grader:ci"
CANDIDATE_NAME = "candidate"
CANDIDATE_UID = int(os.environ.get("GRADER_CANDIDATE_UID", "1500000000"))
PATH = "/usr/local/bin:/usr/bin:/bin"
LIFETIME = int(os.environ.get("GRADER_CONTAINER_LIFETIME", str(4 * 3600)))   # seconds
# one launch agent per container forks the inits instead of one engine ``exec`` each
# (about 40 ms of the engine's CPU per exec); GRADER_AGENT=0: exec every time
AGENT = os.environ.get("GRADER_AGENT", "1") != "0"
AGENT_ACK = 3.0                      # s for the agent to take a request, else exec (and no more agent)
AGENT_STARTS = 8                     # agents started per process and box at most (kill -1 ends them)
HIDDEN = ("/opt/saturnd",)           # the kit inside the grading image: golden cases, grader
MiB = 1 << 20

DEFAULT_LIMITS = {
    "memory": 1024 * MiB,            # per submission, all its processes; no swap beyond it
    "pids": 256,                     # processes and threads of the submission
    "cpus": 1.0,                     # CPUs' worth of time
    "tmp": 64 * MiB,                 # the size of /tmp (a tmpfs)
}
ENV_LIMITS = {"memory": "GRADER_MEMORY", "pids": "GRADER_PIDS", "cpus": "GRADER_CPUS",
              "tmp": "GRADER_TMP_SIZE"}


class NoEngine(Exception):
    """No container engine to isolate candidates (the message says why)."""


def parse_size(text: object) -> int:
    """``512m``, ``1g``, ``65536`` -> bytes."""
    t = str(text).strip().lower().rstrip("b")
    mult = 1
    for suffix, m in (("k", 1 << 10), ("m", MiB), ("g", 1 << 30)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    value = int(float(t) * mult)
    if value <= 0:
        raise ValueError(f"not a positive size: {text!r}")
    return value


def limits_from(overrides: "Mapping[str, object] | None" = None) -> "dict[str, Any]":
    """The limits in force: defaults, then GRADER_* variables, then ``overrides``."""
    out: dict[str, Any] = dict(DEFAULT_LIMITS)
    for key, var in ENV_LIMITS.items():
        if os.environ.get(var):
            out[key] = os.environ[var]
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    out["memory"] = parse_size(out["memory"])
    out["tmp"] = parse_size(out["tmp"])
    out["pids"] = int(out["pids"])
    out["cpus"] = float(out["cpus"])
    if out["pids"] < 8 or out["cpus"] <= 0:
        raise ValueError("pids must be at least 8 and cpus positive")
    return out


def describe_limits(limits: "Mapping[str, Any]") -> str:
    return (f"memory {limits['memory'] // MiB} MiB (no swap), {limits['pids']} processes, "
            f"{limits['cpus']:g} CPU, /tmp {limits['tmp'] // MiB} MiB")


_engine: dict[str, object] = {}


def engine() -> "Any":
    """The Docker client, or raise :class:`NoEngine` (why) -- checked once per process."""
    if "client" in _engine:
        return _engine["client"]
    if "why" in _engine:
        raise NoEngine(_engine["why"])
    try:
        import docker
        _ = docker.from_env         # not a folder named docker/ on the path
    except (ImportError, AttributeError):
        _engine["why"] = "the docker Python package is missing (pip install 'saturnd[grade]')"
        raise NoEngine(_engine["why"]) from None
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as e:             # noqa: BLE001 -- any failure means no engine
        _engine["why"] = f"no Docker engine answers ({type(e).__name__})"
        raise NoEngine(_engine["why"]) from None
    try:
        client.images.get(IMAGE)
    except Exception:                   # noqa: BLE001
        _engine["why"] = f"the candidate image {IMAGE} is missing (ci/build-grader-image.sh)"
        raise NoEngine(_engine["why"]) from None
    _engine["client"] = client
    return client


def available() -> bool:
    try:
        engine()
        return True
    except NoEngine:
        return False


# -- what the container's /etc says -------------------------------------------------------------

def etc_files(directory: str, uid: int, gid: int, home: str = "/tmp") -> dict[str, str]:
    files = {
        "passwd": f"root:x:0:0:root:/root:/bin/sh\n"
                  f"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                  f"{CANDIDATE_NAME}:x:{uid}:{gid}:grader candidate:{home}:/bin/sh\n",
        "group": f"root:x:0:\ntty:x:5:\nnogroup:x:65534:\n{CANDIDATE_NAME}:x:{gid}:\n",
    }
    os.makedirs(directory, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    for name in files:
        os.chmod(os.path.join(directory, name), 0o644)
    return {n: os.path.join(directory, n) for n in files}


# -- plain files in, nothing followed out ---------------------------------------------------------

def copy_plain(src: str, dest: str, uid: int | None, gid: int | None,
               log: "IO[str] | None" = None) -> list[str]:
    """Copy the folder ``src`` into ``dest`` as plain files: regular files and folders
    only (symlinks, FIFOs, sockets, devices are left out and listed in ``log``), never
    following a link, modes reduced to 0755/0644 (no setuid, setgid or sticky bit),
    owned by ``uid:gid``.  Returns the names left out."""
    skipped: list[str] = []
    os.makedirs(dest, exist_ok=True)
    _own(dest, uid, gid, 0o755)
    # the copy may be made inside the submission (GitLab: GRADER_WORK_DIR under
    # $CI_PROJECT_DIR, which is the submission): never copy a folder that holds the copy
    holds_dest = set()
    d = os.path.abspath(dest)
    while True:
        st = os.stat(d)
        holds_dest.add((st.st_dev, st.st_ino))
        if d == os.path.dirname(d):
            break
        d = os.path.dirname(d)
    for top, dirs, files in os.walk(src):
        rel = os.path.relpath(top, src)
        target = dest if rel == "." else os.path.join(dest, rel)
        keep: list[str] = []
        for name in sorted(dirs):
            st = os.lstat(os.path.join(top, name))
            if (st.st_dev, st.st_ino) in holds_dest:
                if log is not None:
                    log.write(f"not copied (the grader's work folder): "
                              f"{os.path.normpath(os.path.join(rel, name))}\n")
                continue
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(os.path.join(target, name), 0o755)
                _own(os.path.join(target, name), uid, gid, 0o755)
                keep.append(name)
            else:
                skipped.append(os.path.normpath(os.path.join(rel, name)))
        dirs[:] = keep
        for name in sorted(files):
            path = os.path.join(top, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                skipped.append(os.path.normpath(os.path.join(rel, name)))
                continue
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                out = os.open(os.path.join(target, name),
                              os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    while True:
                        chunk = os.read(fd, 1 << 20)
                        if not chunk:
                            break
                        os.write(out, chunk)
                finally:
                    os.close(out)
            finally:
                os.close(fd)
            _own(os.path.join(target, name), uid, gid, mode)
    if log is not None:
        for name in skipped:
            log.write(f"not copied (not a regular file): {name}\n")
    return skipped


def _own(path: str, uid: int | None, gid: int | None, mode: int) -> None:
    if uid is not None and gid is not None and os.geteuid() == 0:     # set together
        os.lchown(path, uid, gid)
    os.chmod(path, mode)


def regular_in(root: str, path: str) -> str | None:
    """``path`` when it is a regular file inside ``root`` reached through no symlink (the
    candidate may have planted links in its box), else None."""
    path = os.path.abspath(path)
    root = os.path.abspath(root)
    if not path.startswith(root + "/") or os.path.realpath(path) != path:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111 else None


def read_box_file(path: str, limit: int = 64 * MiB) -> bytes:
    """A file the candidate could write to, read without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        chunks: list[bytes] = []
        n = 0
        while n < limit:
            chunk = os.read(fd, min(1 << 20, limit - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def box_file(path: str, uid: int, gid: int) -> str:
    """An empty file the candidate's uid may write (not replace: its folder is ours)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.close(fd)
    _own(path, uid, gid, 0o600)
    return path


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- the container ------------------------------------------------------------------------------

def _candidate_ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        return CANDIDATE_UID, CANDIDATE_UID
    return os.getuid(), os.getgid()


class Box:
    """A submission's container and the host folder it shares (same path inside)."""

    def __init__(self, client: "Any", container_id: str, root: str, uid: int, gid: int,
                 limits: "dict[str, Any]", owned: bool) -> None:
        self.client = client
        self.api = client.api
        self.id = container_id
        self.root = root
        self.uid, self.gid = uid, gid
        self.limits = limits
        self.owned = owned              # made by this process: removed by it
        self.user = CANDIDATE_NAME
        # /tmp/candidate/saturnd inside is tmproot/candidate/saturnd here: the daemon's and
        # the client's default pipes directory, reachable by the kit's fake daemon
        self.tmproot = os.path.join(root, "tmproot")
        self.default_saturnd = os.path.join(self.tmproot, self.user, "saturnd")
        self.host_tmp = os.path.join(root, "kit-tmp")
        self.init = os.path.join(root, "etc", "sandbox_init.py")
        self.started = time.monotonic()
        self.startup: float | None = None     # seconds create() took to start it
        # the launch agent (grader/sandbox_init.py, ``agent``): its folder, of the candidate
        self.agent_dir = os.path.join(root, "agent")
        self._agent_lock = threading.Lock()
        self._agent_starts = 0
        self._agent_seq = 0
        self.agent_launches = 0                # programs started through the agent
        self.exec_launches = 0                 # ... and through one engine exec each

    @classmethod
    def create(cls, base: str, label: str = "grade",
               limits: "Mapping[str, object] | None" = None) -> "Box":
        """A fresh box under ``base`` and its container, started; :class:`NoEngine` if
        there is no engine."""
        client = engine()
        in_force = limits_from(limits)
        os.makedirs(base, exist_ok=True)
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-"
                       for c in label)[:40]
        root = tempfile.mkdtemp(prefix=f"saturnd-box-{safe}-", dir=os.path.abspath(base))
        os.chmod(root, 0o755)
        uid, gid = _candidate_ids()
        etc = etc_files(os.path.join(root, "etc"), uid, gid)
        # the init, in the box (the engine sees the box, maybe not the kit's own folder)
        shutil.copyfile(INIT_HOST, os.path.join(root, "etc", "sandbox_init.py"))
        os.chmod(os.path.join(root, "etc", "sandbox_init.py"), 0o644)
        saturnd_dir = os.path.join(root, "tmproot", CANDIDATE_NAME, "saturnd")
        os.makedirs(saturnd_dir)
        for d in (os.path.join(root, "tmproot"), os.path.dirname(saturnd_dir)):
            os.chmod(d, 0o755)
        _own(saturnd_dir, uid, gid, 0o700)
        os.makedirs(os.path.join(root, "kit-tmp"), 0o755)
        os.chmod(os.path.join(root, "kit-tmp"), 0o755)
        agent_dir = os.path.join(root, "agent")
        os.mkdir(agent_dir)
        os.mkfifo(os.path.join(agent_dir, "queue"), 0o600)
        _own(os.path.join(agent_dir, "queue"), uid, gid, 0o600)
        _own(agent_dir, uid, gid, 0o700)
        volumes = {
            root: {"bind": root, "mode": "rw"},
            etc["passwd"]: {"bind": "/etc/passwd", "mode": "ro"},
            etc["group"]: {"bind": "/etc/group", "mode": "ro"},
            saturnd_dir: {"bind": f"/tmp/{CANDIDATE_NAME}/saturnd", "mode": "rw"},
        }
        tmpfs = {"/tmp": f"size={in_force['tmp']},mode=1777",
                 **{h: "size=4k,mode=0555" for h in HIDDEN}}
        t0 = time.monotonic()
        name = f"saturnd-grade-{safe}-{os.path.basename(root)[-8:]}"
        try:
            c = client.containers.run(
                # a kit killed before it removes its container leaves it at most LIFETIME
                IMAGE, ["sleep", str(LIFETIME)], entrypoint=[], detach=True, init=True,
                auto_remove=True,
                name=name,
                labels={"saturnd-grade": "candidate"},
                network_mode="none", cap_drop=["ALL"], security_opt=["no-new-privileges"],
                read_only=True, tmpfs=tmpfs, volumes=volumes, working_dir=root,
                mem_limit=in_force["memory"], memswap_limit=in_force["memory"],
                pids_limit=in_force["pids"], nano_cpus=int(in_force["cpus"] * 1e9),
                # the container's own first process is nobody's: a candidate's `kill -1`
                # cannot end the container
                shm_size=min(in_force["tmp"], 64 * MiB), user="65534:65534",
                environment={"PATH": PATH, "LANG": "C.UTF-8"}, ipc_mode="private")
        except BaseException as e:      # noqa: BLE001 -- SIGTERM between create and start too
            try:
                client.api.remove_container(name, force=True)
            except Exception:           # noqa: BLE001 -- never made
                pass
            shutil.rmtree(root, ignore_errors=True)
            if not isinstance(e, Exception):
                raise
            raise NoEngine(f"cannot start a container from {IMAGE}: {e}") from None
        box = cls(client, c.id, root, uid, gid, in_force, owned=True)
        box.startup = time.monotonic() - t0
        return box

    def handle(self) -> str:
        """What a grading process needs to attach (the ``GRADER_BOX`` variable)."""
        return json.dumps({"id": self.id, "root": self.root, "uid": self.uid, "gid": self.gid,
                           "limits": self.limits})

    @classmethod
    def attach(cls, handle: str) -> "Box":
        d = json.loads(handle)
        return cls(engine(), d["id"], d["root"], d["uid"], d["gid"], d["limits"], owned=False)

    def describe(self) -> str:
        return (f"container: one per submission ({IMAGE}), no network, no capabilities, "
                f"no-new-privileges, read-only image, uid {self.uid} ({self.user}), "
                f"{describe_limits(self.limits)}")

    # -- running programs ----------------------------------------------------------------
    def launch(self, argv: "Sequence[str | bytes]",
               env: "Mapping[str, str] | Mapping[bytes, bytes]", cwd: str, status: str,
               mode: str = "client", stdout: str | None = None, stderr: str | None = None,
               rlimits: "Mapping[str, int] | None" = None,
               outputs: "Iterable[tuple[str, IO[bytes] | None]]" = ()) -> "Exec":
        """Start ``argv`` in the container through the init; a Popen-like :class:`Exec`.

        ``stdout``/``stderr``: files of the box the candidate's output goes to (made here,
        writable by the candidate); ``outputs``: ``[(box file, file object)]`` copied into
        the file objects when the program has ended."""
        for path in {p for p in (status, stdout, stderr) if p}:
            if not os.path.exists(path):
                box_file(path, self.uid, self.gid)
        cfg = {"argv": [os.fsdecode(a) for a in argv],
               "env": {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()},
               "cwd": cwd, "uid": None, "gid": None, "limits": rlimits or {},
               "status": status, "mode": mode, "stdout": stdout, "stderr": stderr,
               "loginuid": True}
        if self._by_agent(cfg):
            self.agent_launches += 1
            return Exec(self, None, argv, status, outputs)
        self.exec_launches += 1
        ex = self.api.exec_create(self.id, ["python3", "-I", "-S", self.init, json.dumps(cfg)],
                                  stdout=False, stderr=False, user=f"{self.uid}:{self.gid}",
                                  workdir=cwd, environment={"PATH": PATH})
        self.api.exec_start(ex["Id"], detach=True)
        return Exec(self, ex["Id"], argv, status, outputs)

    # -- the launch agent ------------------------------------------------------------------
    # Everything in the agent's folder belongs to the candidate's uid, so the kit never
    # follows a link there (O_NOFOLLOW, O_EXCL, rename and lstat only), and whatever goes
    # wrong there -- a replaced FIFO, a request not taken within AGENT_ACK s, an agent
    # killed more than AGENT_STARTS times -- ends the agent's use for this box: the program
    # is then started with an engine exec, as without the agent.
    def _agent_off(self) -> bool:
        return not AGENT or os.path.exists(os.path.join(self.root, "agent-off"))

    def _stop_using_agent(self, why: str) -> None:
        try:
            with open(os.path.join(self.root, "agent-off"), "w") as f:
                f.write(why + "\n")
        except OSError:
            pass

    def _queue(self) -> int | None:
        """The agent's FIFO open for writing, the agent started when none reads it; None
        when the agent cannot be used."""
        path = os.path.join(self.agent_dir, "queue")
        with self._agent_lock:
            deadline = None
            while True:
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
                except OSError as e:
                    if e.errno != errno.ENXIO:
                        self._stop_using_agent(f"queue: {e.strerror}")
                        return None
                    fd = None
                if fd is not None:
                    if stat.S_ISFIFO(os.fstat(fd).st_mode):
                        return fd
                    os.close(fd)
                    self._stop_using_agent("queue is not a FIFO")
                    return None
                now = time.monotonic()
                if deadline is None:            # nobody reads it: start an agent
                    if self._agent_starts >= AGENT_STARTS:
                        return None
                    self._agent_starts += 1
                    if not self._start_agent():
                        return None
                    deadline = now + AGENT_ACK
                elif now >= deadline:
                    self._stop_using_agent("the agent did not open its queue")
                    return None
                time.sleep(0.002)

    def _start_agent(self) -> bool:
        try:
            ex = self.api.exec_create(
                self.id, ["python3", "-I", "-S", self.init, "--agent", self.agent_dir],
                stdout=False, stderr=False, user=f"{self.uid}:{self.gid}",
                workdir=self.agent_dir, environment={"PATH": PATH})
            self.api.exec_start(ex["Id"], detach=True)
        except Exception:               # noqa: BLE001 -- exec then
            return False
        try:
            with open(os.path.join(self.root, "agent-exec"), "w") as f:
                f.write(ex["Id"])
        except OSError:
            pass
        return True

    def agent_running(self) -> bool | None:
        """Whether the last agent started for this box runs (None: cannot tell)."""
        try:
            with open(os.path.join(self.root, "agent-exec")) as f:
                exec_id = f.read().strip()
            return bool(self.api.exec_inspect(exec_id).get("Running"))
        except Exception:               # noqa: BLE001
            return None

    def _tell_agent(self, line: str) -> bool:
        if self._agent_off():
            return False
        fd = self._queue()
        if fd is None:
            return False
        try:
            return os.write(fd, line.encode()) == len(line)    # < PIPE_BUF: all or nothing
        except OSError:
            return False
        finally:
            os.close(fd)

    def _by_agent(self, cfg: "dict[str, Any]") -> bool:
        """Have the agent start ``cfg``'s init; False: not done, start it with exec."""
        if self._agent_off():
            return False
        with self._agent_lock:
            self._agent_seq += 1
            name = f"{os.getpid()}n{self._agent_seq}"
        path = os.path.join(self.agent_dir, name + ".json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError:
            return False
        try:
            os.write(fd, json.dumps(cfg).encode())
        finally:
            os.close(fd)
        if not self._tell_agent(f"launch {name}\n"):
            _unlink_quietly(path)
            return False
        deadline = time.monotonic() + AGENT_ACK
        pause = 0.0002
        while True:
            try:
                os.lstat(path)
            except FileNotFoundError:
                return True                     # taken (renamed) by the agent
            if time.monotonic() >= deadline:
                try:
                    os.rename(path, path + ".cancelled")     # taken back: exec it
                except FileNotFoundError:
                    return True                 # the agent took it meanwhile
                _unlink_quietly(path + ".cancelled")
                self._stop_using_agent("a request was not taken in time")
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    def run(self, argv: "Sequence[str | bytes]", cwd: str, timeout: float, log_path: str,
            env: "Mapping[str, str] | Mapping[bytes, bytes] | None" = None
            ) -> tuple[int | None, bool]:
        """Run ``argv`` to its end (e.g. ``make``), stdout+stderr appended to the host file
        ``log_path``; returns (status, timed_out)."""
        d = tempfile.mkdtemp(prefix="run-", dir=self.root)
        os.chmod(d, 0o755)
        out = box_file(os.path.join(d, "out"), self.uid, self.gid)
        proc = self.launch(argv, env or self.env(cwd), cwd, os.path.join(d, "status"),
                           mode="client", stdout=out, stderr=out, rlimits=DEFAULT_RLIMITS)
        timed_out = False
        code: int | None
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            timed_out, code = True, None
        with open(log_path, "ab") as log:
            log.write(read_box_file(out, 16 * MiB))
            if timed_out:
                log.write(f"\n[grader] killed after {timeout:g} s\n".encode())
        shutil.rmtree(d, ignore_errors=True)
        return code, timed_out

    def env(self, home: str, tz: str = "UTC",
            extra: "Mapping[str, str] | None" = None) -> dict[str, str]:
        env = {"PATH": PATH, "HOME": home, "USER": self.user, "LOGNAME": self.user,
               "TZ": tz, "LANG": "C.UTF-8"}
        env.update(extra or {})
        return env

    def libfaketime(self) -> str | None:
        """libfaketime's library in the image (for a daemon under accelerated time)."""
        try:
            r = self.client.containers.get(self.id).exec_run(
                ["sh", "-c", "ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/"
                             "libfaketime.so.1 2>/dev/null"], user=f"{self.uid}:{self.gid}")
            found = r.output.decode("utf-8", "replace").split()
            return found[0] if r.exit_code in (0, 2) and found else None
        except Exception:               # noqa: BLE001
            return None

    def kill_all(self) -> None:
        """Every candidate process in the container (the box stays)."""
        try:
            self.api.exec_start(self.api.exec_create(
                self.id, ["sh", "-c", "kill -KILL -1"], stdout=False, stderr=False,
                user=f"{self.uid}:{self.gid}")["Id"])
        except Exception:               # noqa: BLE001
            pass

    def clean_default_pipes(self) -> None:
        """Empty /tmp/candidate/saturnd (between daemons, before a default-pipes case)."""
        d = self.default_saturnd
        try:
            names = os.listdir(d)
        except OSError:
            return
        for name in names:
            p = os.path.join(d, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    os.unlink(p)
                except OSError:
                    pass

    def remove(self) -> None:
        """The container (and everything it runs) removed, the box deleted."""
        if not self.owned:
            return
        self.owned = False
        try:
            self.api.remove_container(self.id, force=True)
        except Exception:               # noqa: BLE001
            pass
        shutil.rmtree(self.root, ignore_errors=True)


# the rlimits the init sets in a container: what cgroups do not cover per process
DEFAULT_RLIMITS = {
    "RLIMIT_CPU": 120,                  # seconds of CPU time
    "RLIMIT_FSIZE": 256 * MiB,          # output floods
    "RLIMIT_NOFILE": 1024,
    "RLIMIT_CORE": 0,
}


class Exec:
    """A program started in a :class:`Box` (Popen-like): ``poll``, ``wait``, ``kill``."""

    INSPECT_EVERY = 0.5

    def __init__(self, box: Box, exec_id: str | None, args: "Sequence[str | bytes]", status: str,
                 outputs: "Iterable[tuple[str, IO[bytes] | None]]" = ()) -> None:
        self.box, self.exec_id, self.args, self.status = box, exec_id, args, status
        self.outputs = list(outputs)
        self.returncode: int | None = None
        self.pid: int | None = None
        self._inspected = time.monotonic()

    def _status_lines(self) -> list[str]:
        return read_box_file(self.status, 1 << 20).decode("utf-8", "replace").splitlines()

    def init_pid(self) -> int | None:
        for line in self._status_lines():
            if line.startswith("init "):
                try:
                    return int(line.split()[1])
                except (IndexError, ValueError):
                    return None
        return None

    def _ended(self) -> int | None:
        for line in reversed(self._status_lines()):
            if line.startswith("end "):
                try:
                    return int(line.split()[1])
                except (IndexError, ValueError):
                    return 125
        now = time.monotonic()
        if now - self._inspected >= self.INSPECT_EVERY:
            # the init itself gone without a word (killed by the candidate, out of memory)
            self._inspected = now
            if self.exec_id is None:    # started by the agent, which writes a killed init's end
                return self._lost_by_agent()
            try:
                info = self.box.api.exec_inspect(self.exec_id)
            except Exception:           # noqa: BLE001 -- the container is gone
                return 137
            if not info.get("Running"):
                code = info.get("ExitCode")
                return 137 if code is None else code
        return None

    def _lost_by_agent(self) -> int | None:
        """137 when the init is gone without a word and no agent is left to say so."""
        if self.box.agent_running() is not False:
            return None
        pid = self.init_pid()
        try:
            r = self.box.client.containers.get(self.box.id).exec_run(
                ["sh", "-c", f"kill -0 {pid}"] if pid else ["false"],
                user=f"{self.box.uid}:{self.box.gid}")
        except Exception:               # noqa: BLE001 -- the container is gone
            return 137
        if r.exit_code == 0:
            return None
        for line in reversed(self._status_lines()):     # it may have ended meanwhile
            if line.startswith("end "):
                return None
        return 137

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self._ended()
            if code is not None:
                self.returncode = code
                for path, fileobj in self.outputs:
                    data = read_box_file(path, 64 * MiB)
                    if fileobj is not None and data:
                        fileobj.write(data)
                        fileobj.flush()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        start = time.monotonic()
        pause = 0.002
        while self.poll() is None:
            if timeout is not None and time.monotonic() - start >= timeout:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(pause)
            pause = min(0.02, pause * 2)
        return self.returncode

    def send_signal(self, sig: int = 15) -> None:
        if self.poll() is not None:
            return
        pid = self.init_pid()
        if pid and self.box._tell_agent(f"signal {pid} {int(sig)}\n"):
            return
        argv = ["sh", "-c", f"kill -{int(sig)} {pid}" if pid else "kill -KILL -1"]
        try:
            self.box.api.exec_start(self.box.api.exec_create(
                self.box.id, argv, stdout=False, stderr=False,
                user=f"{self.box.uid}:{self.box.gid}")["Id"])
        except Exception:               # noqa: BLE001
            pass

    def terminate(self) -> None:
        self.send_signal(15)

    def kill(self) -> None:
        """The init told to kill everything its program started (SIGTERM to it), then,
        if it does not end within 3 s, every candidate process of the container."""
        self.terminate()
        try:
            self.wait(3)
        except subprocess.TimeoutExpired:
            self.box.kill_all()
