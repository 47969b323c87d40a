#!/usr/bin/python3
"""Prints every SATURND_TEST_SECRET found in a process's environment, writes over any run
JSON it can reach, and kills every grader process it may signal.  Exits 42 when it found a
secret, 43 when it wrote a run JSON or signalled a grader (so that the reports say it)."""
import sys
import os
import signal

found = set()
harmed = False
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        env = []
    for kv in env:
        if kv.startswith(b"SATURND_TEST_SECRET="):
            found.add(kv.decode("utf-8", "replace"))
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except OSError:
        continue
    if b"--json" in cmd:
        try:
            target = cmd[cmd.index(b"--json") + 1]
            with open(target, "w") as f:
                f.write('{"version": 1, "cases": [], "scores": null}')
            harmed = True
        except (OSError, IndexError):
            pass
    if any(b"grader" in a for a in cmd) and int(pid) != os.getpid():
        try:
            os.kill(int(pid), signal.SIGKILL)
            harmed = True
        except OSError:
            pass
for s in sorted(found):
    print(s)
    print(s, file=sys.stderr)
sys.exit(42 if found else 43 if harmed else 0)
