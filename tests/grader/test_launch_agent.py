"""The launch agent of a submission's container (grader/sandbox_init.py ``agent``,
grader/container.py ``Box.launch``): one process per container that forks the init of each
program the grade runs, instead of one engine ``exec`` each (about 40 ms of the engine's
CPU apiece, a hundred per grade).

It runs as the candidate's uid, so the candidate can kill it, steal or block its queue and
plant links in its folder: each of those must leave the grade as it would be without the
agent (the program still runs, through ``exec``) and never make the kit follow a link.
Needs the container engine and the candidate image (skipped without, failed under CI).
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from grader import container

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module", autouse=True)
def engine(container_engine):
    """The engine, or skip (fail under CI)."""


@pytest.fixture
def box():
    base = tempfile.mkdtemp(prefix="agent-test-", dir="/var/tmp")
    os.chmod(base, 0o755)
    b = container.Box.create(base, label="agent-test")
    yield b
    b.remove()
    shutil.rmtree(base, ignore_errors=True)


def start(box, argv, mode="client"):
    """Start ``argv`` in ``box``; (Exec, its stdout file)."""
    d = tempfile.mkdtemp(prefix="run-", dir=box.root)
    os.chmod(d, 0o755)
    out = container.box_file(os.path.join(d, "out"), box.uid, box.gid)
    proc = box.launch(argv, box.env(d), d, os.path.join(d, "status"), mode=mode,
                      stdout=out, stderr=out)
    return proc, out


def run(box, argv, timeout=30):
    proc, out = start(box, argv)
    code = proc.wait(timeout)
    return code, Path(out).read_bytes()


def wait_for(cond, timeout=20.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# the agent only (the oldest process started with --agent: the inits it forks share its
# command line)
KILL_AGENT = ("import os\n"
              "found = []\n"
              "for p in os.listdir('/proc'):\n"
              "    if not p.isdigit() or int(p) == os.getpid():\n"
              "        continue\n"
              "    try:\n"
              "        cmd = open('/proc/%s/cmdline' % p, 'rb').read()\n"
              "    except OSError:\n"
              "        continue\n"
              "    if b'--agent' in cmd:\n"
              "        found.append(int(p))\n"
              "os.kill(min(found), 9)\n")


def test_programs_start_through_the_agent_with_their_status_and_output(box):
    for code in (0, 3, 7):
        assert run(box, ["sh", "-c", f"echo hello $PPID; exit {code}"])[0] == code
    got, out = run(box, ["sh", "-c", "id -un; printf '%s' \"$HOME\""])
    assert got == 0 and out.startswith(b"candidate\n")
    assert box.agent_launches == 4 and box.exec_launches == 0
    assert box._agent_starts == 1


def test_without_the_agent_every_program_is_an_exec(box, monkeypatch):
    monkeypatch.setattr(container, "AGENT", False)
    assert run(box, ["sh", "-c", "exit 4"])[0] == 4
    assert box.agent_launches == 0 and box.exec_launches == 1


def test_a_killed_init_is_reported_by_the_agent_and_signals_go_through_it(box):
    proc, _ = start(box, ["sleep", "60"])
    wait_for(lambda: proc.init_pid(), what="the init's pid")
    t0 = time.monotonic()
    assert run(box, ["sh", "-c", f"kill -KILL {proc.init_pid()}"])[0] == 0
    assert proc.wait(10) == 137 and time.monotonic() - t0 < 5
    daemon, _ = start(box, ["sleep", "60"], mode="daemon")
    wait_for(lambda: daemon.init_pid(), what="the daemon's init")
    execs = box.exec_launches
    daemon.terminate()                  # SIGTERM to its init, through the agent's queue
    assert daemon.wait(10) is not None
    assert box.exec_launches == execs


def test_an_agent_killed_by_the_candidate_is_started_again(box):
    assert run(box, ["python3", "-c", KILL_AGENT])[0] == 0
    assert run(box, ["sh", "-c", "exit 6"])[0] == 6
    assert box._agent_starts == 2 and box.exec_launches == 0
    assert run(box, ["sh", "-c", "kill -KILL -1"])[0] == 137      # everything, agent too
    assert run(box, ["sh", "-c", "exit 8"])[0] == 8
    assert box._agent_starts == 3


def test_a_queue_held_by_the_candidate_falls_back_to_exec(box):
    """The candidate kills the agent and keeps the queue open for reading without reading:
    the request is not taken within AGENT_ACK s, the kit takes it back and execs; from then
    on the box does without the agent."""
    ready = os.path.join(box.agent_dir, "ready")
    holder = KILL_AGENT + (
        "import time\n"
        f"fd = os.open({os.path.join(box.agent_dir, 'queue')!r}, os.O_RDONLY | os.O_NONBLOCK)\n"
        f"open({ready!r}, 'w').close()\n"
        "time.sleep(120)\n")
    hold, _ = start(box, ["python3", "-c", holder], mode="daemon")
    wait_for(lambda: os.path.exists(ready), what="the queue's holder")
    t0 = time.monotonic()
    assert run(box, ["sh", "-c", "echo once; exit 5"]) == (5, b"once\n")   # run once, by exec
    assert container.AGENT_ACK <= time.monotonic() - t0 < container.AGENT_ACK + 10
    assert box.exec_launches == 1
    assert run(box, ["sh", "-c", "exit 2"])[0] == 2
    assert box.exec_launches == 2        # no more waiting for the agent
    assert os.path.exists(os.path.join(box.root, "agent-off"))
    hold.kill()


def test_links_planted_in_the_agents_folder_are_never_followed(box, tmp_path):
    """The queue replaced by a link to a file of the host, and links at the names of the
    next requests: the kit writes through none of them (O_NOFOLLOW, O_EXCL), and the
    programs still run."""
    victim = Path(tempfile.mkdtemp(prefix="victim-", dir="/var/tmp")) / "victim"
    victim.write_bytes(b"untouched\n")
    try:
        names = " ".join(f"{os.getpid()}n{k}.json" for k in range(1, 40))
        plant = (f"cd {box.agent_dir} && for n in {names}; do ln -s {victim} $n; done")
        assert run(box, ["sh", "-c", plant])[0] == 0      # (its own request name was free)
        assert run(box, ["sh", "-c", "exit 9"])[0] == 9
        assert box.exec_launches >= 1
        relink = (KILL_AGENT + f"os.unlink({os.path.join(box.agent_dir, 'queue')!r})\n"
                  f"os.symlink({str(victim)!r}, {os.path.join(box.agent_dir, 'queue')!r})\n")
        run(box, ["python3", "-c", relink])
        for planted in Path(box.agent_dir).glob(f"{os.getpid()}n*.json"):
            planted.unlink()       # the next request's name is free again: the queue is next
        assert run(box, ["sh", "-c", "exit 11"])[0] == 11
        assert victim.read_bytes() == b"untouched\n"
        assert os.path.exists(os.path.join(box.root, "agent-off"))
    finally:
        shutil.rmtree(victim.parent, ignore_errors=True)


def test_the_agent_outlives_a_process_limit_reached(box):
    """With the container's process limit reached by the candidate, the agent cannot fork
    an init: that program ends with 125 ("cannot start"), and once the processes are gone
    the agent starts the next one."""
    ready = os.path.join(box.agent_dir, "full")
    hog = ("import os, time\n"
           "kids = []\n"
           "while True:\n"
           "    try:\n"
           "        pid = os.fork()\n"
           "    except OSError:\n"
           "        break\n"
           "    if pid == 0:\n"
           "        time.sleep(60)\n"
           "        os._exit(0)\n"
           "    kids.append(pid)\n"
           f"open({ready!r}, 'w').close()\n"
           "time.sleep(60)\n")
    filler, _ = start(box, ["python3", "-c", hog], mode="daemon")
    wait_for(lambda: os.path.exists(ready), what="the process limit reached")
    proc, _ = start(box, ["sh", "-c", "exit 0"])
    assert proc.wait(20) == 125
    assert "cannot start an init" in Path(proc.status).read_text()
    filler.kill()
    assert run(box, ["sh", "-c", "exit 3"])[0] == 3
    assert box.exec_launches == 0 and box._agent_starts == 1
