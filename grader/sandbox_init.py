"""The grader's tiny init: starts one candidate command confined, reaps, reports.

Run as a script (``python3 -I -S sandbox_init.py CONFIG_JSON``), normally as PID 1 of fresh
PID, mount and network namespaces made by ``unshare`` (see :mod:`grader.sandbox`):

- binds the sandbox's own directories over ``/tmp`` and ``/dev/shm`` when asked, and
  copies of ``/etc/passwd`` and ``/etc/group`` naming the run's own uid;
- forks the candidate: new session, rlimits, no supplementary groups, the sandbox
  uid/gid, the sandbox's working directory, then ``exec``;
- reaps every process (a detached daemon is re-parented to us) and writes one line
  per ended process to the status file (``PID exited N`` / ``PID killed by signal
  N (NAME)``), and ``main ...`` for the candidate's first process;
- ``client`` mode: when the first process ends, kills the rest and exits with its
  status (128 + N for a signal); ``daemon`` mode: lives until no process is left
  (then exits with the first process's status) or until SIGTERM, which kills all.

Outside a PID namespace (no ``unshare``) "the rest" is every process carrying the
sandbox token in its environment.  Standard library only; imports kept minimal.
"""

import json
import os
import signal
import sys


def _token_pids(token):
    needle = b"GRADER_SANDBOX=" + token.encode() + b"\0"
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    found.append(int(name))
        except OSError:
            pass
    return found


def kill_rest(cfg, pid1):
    if pid1:
        try:
            os.kill(-1, signal.SIGKILL)      # every process of this PID namespace but us
        except OSError:
            pass
        return
    for _ in range(5):                       # fork loops: repeat until nothing is left
        pids = _token_pids(cfg["token"])
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def describe(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "?"
        return f"killed by signal {sig} ({name})", 128 + sig
    code = os.waitstatus_to_exitcode(status)
    return f"exited {code}", code


def bind(source, target):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    ms_bind, ms_rec = 4096, 16384
    if libc.mount(source.encode(), target.encode(), None, ms_bind | ms_rec, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind {source} on {target}: {os.strerror(err)}")


def child(cfg):
    import resource
    import warnings  # noqa: F401 -- os.execvpe imports it to search PATH, after the uid
    # drop, when the interpreter's own files may be out of that uid's reach (/root)
    os.setsid()
    for name, value in cfg["limits"].items():
        res = getattr(resource, name)
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
    if cfg.get("uid") is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
    os.chdir(cfg["cwd"])
    argv = [os.fsencode(a) for a in cfg["argv"]]
    env = {os.fsencode(k): os.fsencode(v) for k, v in cfg["env"].items()}
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        os.write(2, f"grader: cannot run {cfg['argv'][0]}: {e.strerror}\n".encode())
    os._exit(127)


def main():
    cfg = json.loads(sys.argv[1])
    pid1 = os.getpid() == 1
    status_fd = os.open(cfg["status"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(line):
        os.write(status_fd, (line + "\n").encode())

    try:
        for name, path in (cfg.get("etc") or {}).items():   # the candidate's passwd entry
            bind(path, f"/etc/{name}")
    except OSError as e:
        log(f"setup failed: {e}")
        return 125
    if cfg.get("private_tmp"):
        try:
            bind(cfg["private_tmp"], "/tmp")
            # a private /dev/shm too: POSIX shared memory and semaphores (libfaketime
            # names its own after the PID, which other PID namespaces reuse)
            if cfg.get("private_shm") and os.path.isdir("/dev/shm"):
                bind(cfg["private_shm"], "/dev/shm")
        except OSError as e:
            log(f"setup failed: {e}")
            return 125
    stopping = []

    def on_term(signum, frame):
        stopping.append(signum)
        kill_rest(cfg, pid1)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    import time
    t0 = time.monotonic()
    main_pid = os.fork()
    if main_pid == 0:
        try:
            child(cfg)
        except BaseException as e:     # never a silent 127: say which step failed
            os.write(2, f"grader: cannot start {cfg['argv'][0]}: {e!r}\n".encode())
        finally:
            os._exit(127)
    log(f"started {main_pid}")
    main_code = None
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            if pid1 or main_code is None:
                break
            # outside a namespace, detached processes are not our children: poll them
            if cfg["mode"] == "client" or stopping or not _token_pids(cfg["token"]):
                break
            time.sleep(0.1)
            continue
        except InterruptedError:
            continue
        text, code = describe(status)
        if pid == main_pid:
            main_code = code
            log(f"main {pid} {text}")
            if cfg["mode"] == "client":
                # how long the candidate itself ran (the course's timeout is judged on it)
                log(f"ran {time.monotonic() - t0:.3f}")
                kill_rest(cfg, pid1)
        else:
            log(f"{pid} {text}")
    if not pid1:
        kill_rest(cfg, pid1)
    return 125 if main_code is None else main_code


if __name__ == "__main__":
    sys.exit(main())
