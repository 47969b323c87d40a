"""The grader's tiny init: starts one candidate command confined, reaps, reports.

Run as a script (``python3 -I -S sandbox_init.py CONFIG_JSON``): inside the submission's
container (one ``exec`` per candidate program, as the candidate's uid, see
:mod:`grader.container`), or on the host when no engine is used (light isolation):

- becomes a *child subreaper*: whatever the candidate starts, detached (``setsid -f``,
  double fork) or not, stays its descendant, is reaped here and killed with the rest;
- forks the candidate: new session, rlimits, no supplementary groups, the sandbox
  uid/gid (light isolation as root only), the sandbox's working directory, its stdout and
  stderr into files when asked, stdin on /dev/null, then ``exec``; before that, when
  asked, its login uid (``/proc/self/loginuid``, which an unset one may set without any
  privilege) is set to the candidate's uid, so that ``getlogin()`` answers the
  candidate's name as in a login session;
- reaps every process and writes one line per ended process to the status file
  (``PID exited N`` / ``PID killed by signal N (NAME)``), ``main ...`` for the
  candidate's first process, ``init PID`` first and ``end CODE`` last;
- ``client`` mode: when the first process ends, kills the rest and exits with its
  status (128 + N for a signal); ``daemon`` mode: lives until no process is left
  (then exits with the first process's status) or until SIGTERM, which kills all.

Standard library only; imports kept minimal.
"""

import json
import os
import signal
import sys


def _children_map():
    """{ppid: [pid]} of every process visible here."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(name))
    return out


def descendants(root):
    kids = _children_map()
    found, todo = [], [root]
    while todo:
        for pid in kids.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


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


def kill_rest(cfg):
    """Kill every process the candidate started (fork loops: repeat until none is left)."""
    for _ in range(20):
        pids = set(descendants(os.getpid()))
        if cfg.get("token"):
            pids.update(_token_pids(cfg["token"]))
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        # reap what we can, so that the next look does not see zombies
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


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


def subreaper():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def set_loginuid(uid):
    """Our login uid, inherited by the candidate: glibc's ``getlogin()`` answers the
    passwd name of ``/proc/self/loginuid`` (and nothing when it is unset)."""
    try:
        with open("/proc/self/loginuid", "w") as f:
            f.write(str(uid))
        return True
    except OSError:
        return False


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
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, key in ((1, "stdout"), (2, "stderr")):
        if cfg.get(key):
            out = os.open(cfg[key], os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            os.dup2(out, fd)
            os.close(out)
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
    if sys.argv[1:2] == ["--agent"]:
        return agent(sys.argv[2])
    return run(json.loads(sys.argv[1]))


def run(cfg):
    """Start the candidate command ``cfg`` says, reap, report; its exit status."""
    status_fd = os.open(cfg["status"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                        0o644)

    def log(line):
        os.write(status_fd, (line + "\n").encode())

    log(f"init {os.getpid()}")
    subreaper()
    if cfg.get("loginuid"):
        set_loginuid(os.getuid())
    stopping = []

    def on_term(signum, frame):
        stopping.append(signum)
        kill_rest(cfg)

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
            # no child left: detached ones are ours too (subreaper), unless the kernel
            # refused that; then look for them by token
            if main_code is None or stopping or cfg["mode"] == "client" or \
                    not (cfg.get("token") and _token_pids(cfg["token"])):
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
                kill_rest(cfg)
        else:
            log(f"{pid} {text}")
    kill_rest(cfg)
    code = 125 if main_code is None else main_code
    log(f"end {code}")
    return code


# --- the launch agent ------------------------------------------------------------------------
# In a container, ``exec`` costs the engine about 40 ms of CPU each time (runc sets up a new
# process in the container's namespaces and cgroup).  A grade starts about a hundred
# programs, so the kit starts this agent once per container instead: it forks one init
# (``run``) per request.  It runs as the candidate's uid and trusts nothing it reads: a
# request it cannot honour is skipped, and the kit falls back to ``exec`` when a request
# is not taken in time (grader/container.py, ``Box.launch``).

AGENT_QUEUE = "queue"       # the FIFO the kit writes requests to, in the agent's folder


def _agent_reap(inits):
    """Reap ended inits; an init that ended without its ``end`` line (killed) gets one."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        path = inits.pop(pid, None)
        if path is None:
            continue
        text, code = describe(status)
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            lines = os.read(fd, 1 << 20).splitlines()
            if not any(line.startswith(b"end ") for line in lines):
                os.write(fd, f"agent: init {pid} {text}\nend {code}\n".encode())
        finally:
            os.close(fd)


def _agent_note(path, text):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    except OSError:
        return
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _agent_launch(folder, name, inits, queue_fd):
    """Take request ``name`` (``NAME.json`` in ``folder``, claimed by renaming it: the kit
    cancels one it no longer waits for the same way) and fork its init."""
    if not name.isalnum():
        return
    path = os.path.join(folder, name + ".json")
    taken = os.path.join(folder, name + ".taken")
    try:
        os.rename(path, taken)
        fd = os.open(taken, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            cfg = json.loads(os.read(fd, 1 << 20))
        finally:
            os.close(fd)
            os.unlink(taken)
        status = cfg["status"]
    except (OSError, ValueError, TypeError, KeyError):
        return
    # SIGCHLD held until the new init is on the books (it may end at once)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        try:
            pid = os.fork()
        except OSError as e:            # the process limit reached: say so, live on
            _agent_note(status, f"agent: cannot start an init: {e.strerror}\nend 125\n")
            return
        if pid == 0:
            code = 125
            try:
                os.close(queue_fd)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                code = run(cfg)
            finally:
                os._exit(code)
        inits[pid] = status
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def _agent_signal(words):
    try:
        pid, sig = int(words[0]), int(words[1])
        if pid > 1 and 0 < sig < 65:
            os.kill(pid, sig)
    except (IndexError, ValueError, OSError):
        pass


def agent(folder):
    """Serve the kit's requests, one line each on ``folder/queue``: ``launch NAME``,
    ``signal PID SIG``; for ever (the container's removal ends it)."""
    import ctypes  # noqa: F401 -- what each init loads, loaded once here before the forks
    import resource  # noqa: F401
    import time  # noqa: F401
    import warnings  # noqa: F401
    inits = {}
    signal.signal(signal.SIGCHLD, lambda signum, frame: _agent_reap(inits))
    fd = os.open(os.path.join(folder, AGENT_QUEUE), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    buf = b""
    while True:
        chunk = os.read(fd, 4096)
        buf = (buf + chunk)[-65536:]
        *lines, buf = buf.split(b"\n")
        for line in lines:
            words = line.decode("ascii", "replace").split()
            if words[:1] == ["launch"] and len(words) == 2:
                _agent_launch(folder, words[1], inits, fd)
            elif words[:1] == ["signal"]:
                _agent_signal(words[1:])
        _agent_reap(inits)


if __name__ == "__main__":
    sys.exit(main())
