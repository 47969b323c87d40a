"""The project image run as a container: cassini inside and from the host through the
bind-mounted pipes, the manual clock, restarts, `docker stop`, user and network isolation."""

import os

import pytest

from testkit.container import (CONTAINER_PIPES, START, container_ids, host_cassini, host_clock, run_once,
                               wait_for)

# ps for a base without procps: "PID UID COMMAND LINE" per process
PS = r"""
import os
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().rstrip(b"\x00").split(b"\x00")
        print(pid, os.stat(f"/proc/{pid}").st_uid, b" ".join(argv).decode().replace("\n", " "))
    except OSError:
        pass
"""
SCRIPT = "printf 'out %s\\n' \"$PWD\"; echo err >&2; exit 3"


@pytest.mark.timeout(90)
def test_user_is_not_root_and_there_is_no_network(manual):
    c = manual.container
    c.reload()
    assert c.attrs["HostConfig"]["NetworkMode"] == "none"
    assert c.attrs["HostConfig"]["Init"] is True
    uid, gid = container_ids()
    code, out, _ = manual.exec("id", "-u")
    assert code == 0 and out == f"{uid}\n".encode() and uid != 0
    # the daemon itself (not just exec'd commands) runs as that uid, under the init
    code, out, _ = manual.exec("python3", "-c", PS)
    procs = [line.split(None, 2) for line in out.decode().splitlines()]
    daemon = [p for p in procs if "/usr/local/bin/saturnd -f" in p[2]]
    assert daemon and all(p[1] == str(uid) and p[0] != "1" for p in daemon), procs
    assert [p[2] for p in procs if p[0] == "1"][0].startswith("/sbin/docker-init"), procs
    # only the loopback interface
    code, out, _ = manual.exec("ls", "/sys/class/net")
    assert code == 0 and out.split() == [b"lo"]


@pytest.mark.timeout(60)
def test_image_defaults_to_a_non_root_user_with_a_usable_home(docker_client, image):
    config = docker_client.images.get(image).attrs["Config"]
    assert config["User"] not in ("", "0", "root", "0:0")
    code, out = run_once(docker_client, image, ["-c", "id -u; cd && touch f && echo $PWD"],
                         entrypoint=["sh"])
    assert (code, out) == (0, b"1000\n/home/saturnd\n")
    # any uid (compose's SATURND_UID) can use the home and the data directory
    code, out = run_once(docker_client, image, ["-c", "cd && touch f && touch /var/lib/saturnd/g"
                                                " && id -u"], entrypoint=["sh"], user="4242:4242")
    assert (code, out) == (0, b"4242\n")


@pytest.mark.timeout(120)
def test_cassini_inside_and_on_the_host_share_one_daemon(manual, pipes_dir):
    # create inside, list from the host, and the other way round
    assert manual.ok("-c", "-m", "0", "-H", "11", "--", "sh", "-c", SCRIPT) == b"0\n"
    r = host_cassini(pipes_dir, "-c", "-m", "5-7,30", "-d", "1-5", "true")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"1\n"
    expected = (b"0: 0 11 * sh -c " + SCRIPT.encode() + b"\n"
                b"1: 5-7,30 * 1-5 true\n")
    assert manual.ok("-l") == expected
    r = host_cassini(pipes_dir, "-l")
    assert (r.returncode, r.stdout) == (0, expected)
    # an ER reply crosses the bind mount too
    r = host_cassini(pipes_dir, "-o", "0")
    assert r.returncode == 1 and r.stdout == b""
    code, out, _ = manual.cassini("-r", "42")
    assert code == 1 and out == b""


@pytest.mark.timeout(120)
def test_manual_clock_from_inside_and_from_the_host(manual, pipes_dir):
    """TZ=Europe/Paris in the container: scheduled at 11:00 Paris = 10:00 UTC."""
    assert manual.ok("-c", "-m", "0", "-H", "11", "--", "sh", "-c", SCRIPT) == b"0\n"
    assert manual.ok("-c", "-m", "59", "-H", "10", "--", "sh", "-c", "exit 0") == b"1\n"
    assert manual.clock("now") == f"ok {START}\n".encode()
    # 10:58 -> 10:59 (task 1 runs) -> 11:00 (task 0 runs), crossed inside the container
    assert manual.clock("advance", "2") == f"ok {START + 120}\n".encode()
    assert manual.ok("-x", "0") == b"2024-01-15 11:00:00 3\n"
    assert manual.ok("-x", "1") == b"2024-01-15 10:59:00 0\n"
    assert manual.ok("-o", "0") == b"out /home/saturnd\n"     # ran in the home directory
    assert manual.ok("-e", "0") == b"err\n"
    # the same clock driven from the host through the bind-mounted pipes directory:
    # a task at minute 30 of every hour, then one hour (60 boundaries) later
    r = host_cassini(pipes_dir, "-c", "-m", "30", "echo", "half past")
    assert (r.returncode, r.stdout) == (0, b"2\n"), r.stderr
    r = host_clock(pipes_dir, "advance", "60")
    assert (r.returncode, r.stdout) == (0, f"ok {START + 120 + 3600}\n".encode()), r.stderr
    r = host_cassini(pipes_dir, "-x", "2", env_extra={"TZ": "UTC"})
    assert (r.returncode, r.stdout) == (0, b"2024-01-15 10:30:00 0\n"), r.stderr
    assert manual.ok("-x", "2") == b"2024-01-15 11:30:00 0\n"      # Paris time inside
    assert manual.ok("-o", "2") == b"half past\n"
    assert manual.ok("-x", "0") == b"2024-01-15 11:00:00 3\n"      # 12:00 was not due


@pytest.mark.timeout(120)
def test_restart_keeps_tasks_history_and_outputs(manual, pipes_dir):
    manual.ok("-c", "-m", "*", "--", "sh", "-c", SCRIPT)
    manual.ok("-c", "-m", "*", "printf", "%s", "two")
    manual.ok("-r", manual.ok("-c", "true").strip().decode())     # id 2, removed
    manual.clock("advance", "1")
    before = [manual.ok(*a) for a in (("-l",), ("-x", "0"), ("-x", "1"), ("-o", "0"),
                                      ("-e", "0"), ("-o", "1"))]
    assert before[1] == b"2024-01-15 10:59:00 3\n" and before[5] == b"two"
    manual.container.restart(timeout=20)
    manual.wait_ready()
    after = [manual.ok(*a) for a in (("-l",), ("-x", "0"), ("-x", "1"), ("-o", "0"),
                                     ("-e", "0"), ("-o", "1"))]
    assert after == before
    # new ids continue after the highest ever handed out (2, removed)
    assert manual.ok("-c", "true") == b"3\n"


@pytest.mark.timeout(120)
def test_killed_container_starts_again_on_its_data(saturnd_factory):
    """`docker kill` (SIGKILL, no shutdown at all) leaves lock files, FIFOs and maybe a run
    in flight behind: a new container on the same volume and pipes starts and carries on."""
    first = saturnd_factory(["--clock", "manual", "--start-time", str(START)]).start()
    assert first.ok("-c", "-m", "59", "echo", "recorded") == b"0\n"
    assert first.ok("-c", "-m", "0", "sleep", "300") == b"1\n"
    first.clock("advance", "1")                      # task 0 ran and was recorded
    code, out, _ = first.exec("saturnd-clock", "advance", "1", "0")
    assert code == 1 and out.startswith(b"pending "), out      # task 1 in flight
    first.container.kill()
    assert first.container.wait(timeout=30)["StatusCode"] != 0
    second = saturnd_factory(["--clock", "manual", "--start-time", str(START + 180)]).start()
    assert second.ok("-l") == b"0: 59 * * echo recorded\n1: 0 * * sleep 300\n"
    assert second.ok("-x", "0") == b"2024-01-15 09:59:00 0\n"
    assert second.ok("-o", "0") == b"recorded\n"
    assert second.ok("-c", "true") == b"2\n"


@pytest.mark.timeout(120)
def test_docker_stop_exits_0_and_records_the_runs(saturnd_factory, pipes_dir):
    first = saturnd_factory(["--clock", "manual", "--start-time", str(START),
                             "--grace", "1"]).start()
    first.ok("-c", "-m", "59", "sleep", "300")                       # outlives the grace
    first.ok("-c", "-m", "59", "--", "sh", "-c", "sleep 0.3; echo done")   # ends within it
    code, out, _ = first.exec("saturnd-clock", "advance", "1", "0")
    assert code == 1 and out.startswith(f"pending {START + 60} ".encode()), out
    assert first.stop(timeout=20) == 0, first.logs()
    # a new container on the same volume sees both runs recorded
    second = saturnd_factory(["--clock", "manual", "--start-time", str(START + 120)]).start()
    assert second.ok("-x", "0") == b"2024-01-15 09:59:00 65535\n"
    assert second.ok("-x", "1") == b"2024-01-15 09:59:00 0\n"
    assert second.ok("-o", "1") == b"done\n"
    assert second.stop(timeout=20) == 0


@pytest.mark.timeout(90)
def test_healthcheck_asks_the_daemon(saturnd_factory, docker_client, image):
    test = docker_client.images.get(image).attrs["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD-SHELL" and "cassini -l" in test[1]
    # the image's own check, only run every half second instead of every 30 s
    s = saturnd_factory(["--clock", "manual", "--start-time", str(START)])
    s.run_options = {"healthcheck": {"interval": 500_000_000, "retries": 1}}
    s.start()

    def health():
        s.container.reload()
        return s.container.attrs["State"].get("Health", {}).get("Status")

    wait_for(lambda: health() == "healthy", 30, "the container to be healthy")
    assert s.container.attrs["Config"]["Healthcheck"]["Test"] == test   # not replaced
    # without a daemon answering, the same check fails
    code, out = run_once(docker_client, image, ["-c", "(" + test[1] + "); echo status=$?"],
                         entrypoint=["sh"], user=s.user)
    assert (code, out) == (0, b"status=1\n")


@pytest.mark.timeout(60)
def test_image_has_the_man_pages_and_setpriv(docker_client, image):
    code, out = run_once(docker_client, image,
                         ["-c", "head -c 4 /usr/local/share/man/man1/cassini.1"
                                " /usr/local/share/man/man8/saturnd.8 && command -v setpriv"],
                         entrypoint=["sh"])
    assert code == 0, out
    assert out.count(b".TH ") == 2 and out.endswith(b"setpriv\n"), out


@pytest.mark.timeout(90)
@pytest.mark.parametrize("dropper", ["setpriv", "python3"])
def test_entry_point_as_root_drops_to_the_owner_of_the_checkout(docker_client, image,
                                                                tmp_path, dropper):
    """Started as root with a checkout owned by 2345 and a root-owned pipes directory (what
    the engine makes of a missing bind-mount source): the daemon runs as 2345, the pipes
    directory is given to it; SATURND_UID/SATURND_GID win over the owner. With setpriv, and
    without it (a base lacking util-linux: the entry point drops with python3)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    os.chown(checkout, 2345, 2346)
    script = ("saturnd-entrypoint 2>/tmp/entrypoint.log & for i in $(seq 100); do"
              " [ -p {p}/saturnd-request-pipe ] && break; sleep 0.2; done;"
              " stat -c '%u:%g %a' {p} {p}/saturnd-request-pipe {p}/cassini-lock;"
              " cassini -l && echo listed;"
              " python3 -c 'import os; print(*sorted({{os.stat(\"/proc/\" + p).st_uid"
              " for p in os.listdir(\"/proc\") if p.isdigit()}}))';"
              " grep -q 'with python3' /tmp/entrypoint.log && echo python3 || echo setpriv"
              ).format(p=CONTAINER_PIPES)
    hide = {} if dropper == "setpriv" else {"/dev/null": {"bind": "/usr/bin/setpriv",
                                                           "mode": "ro"}}
    for env, expected in (({}, "2345:2346"),
                          ({"SATURND_UID": "3000", "SATURND_GID": "3001"}, "3000:3001")):
        code, out = run_once(docker_client, image, ["-c", script], entrypoint=["sh"],
                             user="0:0", environment=env,
                             volumes={str(checkout): {"bind": "/run/saturnd/checkout",
                                                      "mode": "ro"}, **hide})
        assert code == 0, out
        uid = expected.split(":")[0]
        # the daemon's process runs as that uid; the shell and python3 as root
        assert out.decode().split("\n") == [f"{expected} 700", f"{expected} 600",
                                            f"{expected} 600", "listed", f"0 {uid}", dropper, ""], out
