"""The kit NOT run as root (attacks 7 and 8 of docs/grading-isolation.md), as a CI job runs
it: inside a *job container* of the grading image, as uid 4242 (no passwd entry), given
the engine's socket (and its group) and the work folder bind-mounted at the same path
inside and outside (so the boxes it bind-mounts into the candidates' containers resolve on
the engine), with a secret in its environment.  The hostile fixture ``secrets`` reads every
environment it can in /proc, overwrites every run JSON it finds and SIGKILLs every grader
process it may signal; ``make`` prints its environment.

The same tests simulate GitLab's ``docker:dind`` service, two ways: a service container
aliased ``docker`` on a network of its own forwards ``tcp://docker:2375`` (the templates'
DOCKER_HOST, used as it is) to the engine's socket (tests/grader/dind/tcp_to_socket.py); or
``DOCKER_HOST`` names the socket mounted at another path (``/run/dind/docker.sock``).  The
submission is the project folder ``$CI_PROJECT_DIR`` and the templates' own script lines
(ci/pipelines/gitlab-ci-*.yml, read as YAML) run with their variables
(``GRADER_ISOLATION=container`` among them).

The kit in the job container is this checkout, mounted read-only over the image's
/opt/saturnd; ``SATURND_KIT_UNDER_TEST=/path/to/another/checkout`` grades with another
(that is how these tests were shown to fail on the kit before container isolation).
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml

from grader import container
from testkit import ROOT

from test_hostile_submissions import (CLIENT_ONLY, HONEST, HOSTILE, N_CASES,  # noqa: F401
                                      client_passed, everything_written, exit_statuses,
                                      result, submission)

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

UID = 4242
KIT = Path(os.environ.get("SATURND_KIT_UNDER_TEST") or ROOT)
SOCKET = "/var/run/docker.sock"
IMAGE = os.environ.get("GRADER_IMAGE", "saturnd-grader:ci")


@pytest.fixture(scope="module", autouse=True)
def engine(container_engine):
    if not os.path.exists(SOCKET):
        pytest.skip(f"no engine socket at {SOCKET} to give the job container")
    return container_engine


@pytest.fixture
def token():
    return uuid.uuid4().hex[:12]


@pytest.fixture
def place(token):
    """A scratch folder under /var/tmp owned by the job's uid, removed after (as root)."""
    path = Path(tempfile.mkdtemp(prefix=f"nonroot-{token}-", dir="/var/tmp"))
    os.chown(path, UID, UID)
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def job(place, command, env, socket_at=SOCKET, timeout=480, cwd=None, network=None):
    """Run ``command`` (a shell line) in a job container as uid 4242: (exit code, output).
    ``socket_at``: where the engine's socket is mounted (None: not at all); ``network``: a
    network to join (where the dind-like service answers)."""
    client = container.engine()
    gid = os.stat(SOCKET).st_gid
    volumes = {str(KIT): {"bind": "/opt/saturnd", "mode": "ro"},
               str(place): {"bind": str(place), "mode": "rw"}}
    if socket_at:
        volumes[SOCKET] = {"bind": socket_at, "mode": "rw"}
    c = client.containers.run(
        IMAGE, ["bash", "-ec", command], entrypoint=[], user=f"{UID}:{UID}",
        group_add=[str(gid)], detach=True, working_dir=str(cwd or place),
        environment=dict({"HOME": "/tmp", "GRADE_PYTHON": "python3"}, **env),
        volumes=volumes, network=network, labels={"saturnd-grade-test": "nonroot-job"})
    try:
        code = c.wait(timeout=timeout)["StatusCode"]
        return code, c.logs().decode("utf-8", "replace")
    finally:
        c.remove(force=True)


def passed_cases(junit):
    """{suite: number of test cases passed} of a JUnit report."""
    import xml.etree.ElementTree as ET
    passed = {}
    for suite in ET.parse(junit).getroot():
        for case in suite.iter("testcase"):
            if not len(case):
                passed[suite.get("name")] = passed.get(suite.get("name"), 0) + 1
    return passed


def mine(place):
    """Folders for the job: owned by its uid."""
    for d in ("class", "work"):
        (place / d).mkdir(exist_ok=True)
    return place / "class", place / "work"


def chown_all(path):
    for p in [path, *path.rglob("*")]:
        os.chown(p, UID, UID, follow_symlinks=False)


# -- 7. the kit not run as root -------------------------------------------------------------------

def test_a_nonroot_kit_keeps_its_secret_its_report_and_its_life(place, token):
    secret = f"s3cret-{token}"
    cls, work = mine(place)
    submission(cls, "a-secrets", HOSTILE / "secrets")
    submission(cls, "b-honest", HONEST)
    chown_all(place)
    out = place / "out"
    code, log = job(place, f"saturnd-grade batch {cls} -o {out} --work-dir {work} -j 2 -- "
                    + " ".join(CLIENT_ONLY),
                    {"SATURND_TEST_SECRET": secret, "GRADER_WORK_DIR": str(work)})
    assert code == 0, log[-3000:]
    assert secret.encode() not in everything_written(out), "the candidate saw the secret"
    assert secret not in log
    # its report is the kit's, whole: every client case counted (a forged run JSON has none)
    for profile in ("strict", "course"):
        assert result(out, "a-secrets")["scores"][profile]["client"]["total"] == N_CASES
    # the candidate exits 42 when it found a secret, 43 when it forged a report or killed
    assert not {42, 43} & set(exit_statuses(out, "a-secrets")), exit_statuses(out, "a-secrets")
    for name in ("a-secrets", "b-honest"):
        assert result(out, name)["grading"] == "ok", result(out, name)
    assert client_passed(result(out, "b-honest")) == 8, result(out, "b-honest")["scores"]
    assert client_passed(result(out, "a-secrets")) < N_CASES
    assert list(work.iterdir()) == [], "the work folder is not empty"


# -- 8. ci/grade.sh not as root -------------------------------------------------------------------

def test_a_nonroot_grade_sh_keeps_the_secret_from_make(place, token):
    secret = f"s3cret-{token}"
    cls, work = mine(place)
    sub = submission(cls, "secrets", HOSTILE / "secrets")
    chown_all(place)
    out = place / "grade-out"
    code, log = job(place, f"/opt/saturnd/ci/grade.sh {sub} {out} -- " + " ".join(CLIENT_ONLY),
                    {"SATURND_TEST_SECRET": secret, "GRADER_WORK_DIR": str(work),
                     "GRADER_ISOLATION": "container"})
    assert code in (0, 1), log[-3000:]
    assert "NOTHING IS ISOLATED" not in log
    assert "client: cassini" in log, log[-3000:]                   # built and found
    assert b"PATH=" in (out / "build.log").read_bytes()         # make printed its env
    assert secret.encode() not in everything_written(out), "make or the candidate saw it"
    assert secret not in log


# -- GitLab's docker:dind, simulated ---------------------------------------------------------------

def gitlab(name, job_name):
    spec = yaml.safe_load((ROOT / "ci" / "pipelines" / name).read_text())
    return spec, spec[job_name]


@pytest.fixture(scope="module")
def dind_service():
    """A stand-in for the ``docker:dind`` service: a container on a network of its own,
    alias ``docker``, forwarding TCP 2375 to the engine's socket (tests/grader/dind/); the
    job container joins that network and uses the template's DOCKER_HOST as it is."""
    import time
    client = container.engine()
    name = f"saturnd-test-dind-{uuid.uuid4().hex[:8]}"
    net = client.networks.create(name, labels={"saturnd-grade-test": "dind"})
    svc = None
    try:
        svc = client.containers.create(
            IMAGE, ["python3", "-I", "/dind/tcp_to_socket.py"], entrypoint=[],
            user=f"{UID}:{UID}", group_add=[str(os.stat(SOCKET).st_gid)],
            volumes={SOCKET: {"bind": "/engine.sock", "mode": "rw"},
                     str(Path(__file__).parent / "dind"): {"bind": "/dind", "mode": "ro"}},
            labels={"saturnd-grade-test": "dind"}, name=name)
        net.connect(svc, aliases=["docker"])
        svc.start()
        deadline = time.monotonic() + 30
        while b"listening" not in svc.logs():
            assert time.monotonic() < deadline, svc.logs()
            time.sleep(0.1)
        yield name
    finally:
        if svc is not None:
            svc.remove(force=True)
        net.remove()


ENGINE_ACCESS = ["dind-tcp", "socket-elsewhere"]


def engine_access(how, dind_network):
    """job() arguments and DOCKER_HOST for one way of reaching the engine."""
    if how == "dind-tcp":
        return {"socket_at": None, "network": dind_network}, None
    return {"socket_at": "/run/dind/docker.sock"}, "unix:///run/dind/docker.sock"


def template_env(spec, j, project, docker_host=None, **extra):
    """The job's variables as GitLab would give them (DOCKER_HOST the service's
    tcp://docker:2375, unless ``docker_host`` says otherwise)."""
    env = {"CI_PROJECT_DIR": str(project)}
    for k, v in {**spec.get("variables", {}), **j.get("variables", {})}.items():
        env[k] = os.path.expandvars(str(v).replace("$CI_PROJECT_DIR", str(project)))
    assert env["DOCKER_HOST"].startswith("tcp://docker:")
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    env["GRADER_IMAGE"] = env["GRADER_CANDIDATE_IMAGE"] = IMAGE   # the job's image, here local
    env.update(extra)
    return env


@pytest.mark.parametrize("how", ENGINE_ACCESS)
def test_gitlab_single_grade_template_with_a_dind_like_engine(place, token, how, request):
    spec, j = gitlab("gitlab-ci-grade.yml", "grade")
    access, docker_host = engine_access(how, request.getfixturevalue("dind_service")
                                        if how == "dind-tcp" else None)
    secret = f"s3cret-{token}"
    project = place / "builds" / "student" / "saturnd"
    submission(place / "builds" / "student", "saturnd", HONEST)
    chown_all(place)
    env = template_env(spec, j, project, docker_host, GRADE_OPTIONS=" ".join(CLIENT_ONLY),
                       SATURND_TEST_SECRET=secret)
    assert env["GRADER_ISOLATION"] == "container"
    # before_script pulls GRADER_IMAGE from the course's registry: here it is local
    code, log = job(place, "\n".join(j["script"]), env, cwd=project, **access)
    out = project / "grade-out"
    summary = (out / "summary.txt").read_text()
    assert code == 1, log[-3000:]          # the partial honest client fails 4 cases
    assert "NOTHING IS ISOLATED" not in log + summary
    assert "note: isolation container: one per submission" in summary
    assert passed_cases(out / "junit.xml") == {"build": 1, "client": 8}, summary
    assert secret.encode() not in everything_written(out)
    assert list(Path(env["GRADER_WORK_DIR"]).iterdir()) == []


@pytest.mark.parametrize("how", ENGINE_ACCESS)
def test_gitlab_class_template_with_a_dind_like_engine(place, token, how, request):
    spec, j = gitlab("gitlab-ci-class.yml", "grade-shard")
    access, docker_host = engine_access(how, request.getfixturevalue("dind_service")
                                        if how == "dind-tcp" else None)
    project = place / "builds" / "course" / "class"
    project.mkdir(parents=True)
    submission(project, "honest", HONEST)
    submission(project, "secrets", HOSTILE / "secrets")
    (project / "class.txt").write_text("honest\nsecrets\n")
    chown_all(place)
    secret = f"s3cret-{token}"
    shards = int(j["parallel"])
    for k in (1, 2):            # the two shards that hold the two submissions
        env = template_env(spec, j, project, docker_host, CI_NODE_INDEX=str(k), CI_NODE_TOTAL=str(shards),
                           GRADE_OPTIONS=" ".join(CLIENT_ONLY), BATCH_OPTIONS="-j 1",
                           SATURND_TEST_SECRET=secret)
        code, log = job(place, "\n".join(j["script"]), env, cwd=project, **access)
        assert code == 0, log[-3000:]
        assert "NOTHING IS ISOLATED" not in log
    rows = {}
    for k in (1, 2):
        shard = project / "grade-out" / f"shard-{k}"
        for name in os.listdir(shard):
            if (shard / name / "result.json").exists():
                rows[name] = result(shard, name)
        assert secret.encode() not in everything_written(shard)
    assert sorted(rows) == ["honest", "secrets"], rows
    assert client_passed(rows["honest"]) == 8
    assert rows["secrets"]["grading"] == "ok"
