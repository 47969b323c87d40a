"""What /proc says about a process (Linux)."""

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (not reaped by its parent yet) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_status_kib(pid: int, *fields: str) -> dict[str, int]:
    """Selected ``/proc/PID/status`` fields (kB values) as a dict of KiB ints."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in fields:
                out[key] = int(value.split()[0])
    return out


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set) of ``pid`` in KiB, or None."""
    try:
        return proc_status_kib(pid, "VmHWM").get("VmHWM")
    except OSError:
        return None


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time consumed so far by process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[tuple[str, str]]:
    """(pid, state) of the live processes whose parent is ``pid``."""
    found: list[tuple[str, str]] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append((entry, fields[0]))
    return found


def leftover_processes(marker: str) -> list[tuple[int, bytes]]:
    """Processes whose command line mentions ``marker`` (a candidate's file name)."""
    found: list[tuple[int, bytes]] = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd and b"pytest" not in cmd:
            found.append((int(name), cmd.replace(b"\0", b" ")[:200]))
    return found


def default_sigint() -> None:
    """``preexec_fn`` for a child a test interrupts with SIGINT: SIGINT back to its default.
    A suite started in the background by a non-interactive shell (``cmd &``, as CI scripts
    do) inherits SIGINT ignored, and an ignored signal stays ignored across exec: the child
    would never see the interrupt the test sends."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)
