"""The CI templates (ci/pipelines/*.yml) read as YAML: the commands their grading jobs run
exist in this kit, and every grading job asks for container isolation
(``GRADER_ISOLATION=container``), which makes a missing engine an error instead of a
silent un-isolated grade."""

import os
import shlex
import subprocess
import sys
import tomllib

import pytest
import yaml

from testkit import ROOT

pytestmark = pytest.mark.timeout(120)
PIPELINES = ROOT / "ci" / "pipelines"
# commands any job image has (the grading image is Debian with python3)
STANDARD = {"python3", "mkdir", "cat", "bash", "echo", "cp", "ls", "{"}


def load(name):
    return yaml.safe_load((PIPELINES / name).read_text())


def entry_points():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def check_command(line, kit_prefix):
    """The first word of a script line names something this kit has."""
    words = shlex.split(line.replace("\\\n", " "))
    while words and "=" in words[0] and not words[0].startswith(("/", ".")):
        words.pop(0)                   # VAR=value prefixes
    cmd = words[0]
    if cmd == "bash":
        cmd = words[1]
    if cmd in STANDARD:
        return
    if cmd in entry_points():
        return
    if cmd.endswith("python") and "-m" in words:
        module = words[words.index("-m") + 1]
        assert (ROOT / module.replace(".", "/")).exists() or \
            (ROOT / (module.replace(".", "/") + ".py")).exists(), line
        return
    assert cmd.startswith(kit_prefix), (cmd, line)
    assert (ROOT / cmd[len(kit_prefix):]).is_file(), (cmd, line)


@pytest.mark.parametrize("name, jobs", [("gitlab-ci-class.yml", ["grade-shard"]),
                                        ("gitlab-ci-grade.yml", ["grade"])])
def test_gitlab_grading_jobs_use_dind_and_container_isolation(name, jobs):
    spec = load(name)
    for job in jobs:
        j = spec[job]
        variables = j["variables"]
        assert variables["GRADER_ISOLATION"] == "container", (name, job)
        assert variables["DOCKER_HOST"].startswith("tcp://docker:"), variables
        assert any(s["name"].startswith("docker:") and s["name"].endswith("dind")
                   and s.get("alias") == "docker" for s in j["services"]), j["services"]
        # the dind engine must see the work folder at the same path: in the project folder
        assert variables["GRADER_WORK_DIR"].startswith("$CI_PROJECT_DIR/"), variables
        assert variables["GRADER_CANDIDATE_IMAGE"] == "$GRADER_IMAGE"
        for line in j.get("before_script", []) + j["script"]:
            check_command(line, "/opt/saturnd/")


@pytest.mark.parametrize("name", ["github-actions-class.yml", "github-actions-grade.yml"])
def test_github_grading_job_asks_for_container_isolation(name):
    spec = load(name)
    job = spec["jobs"]["grade"]
    assert job["env"]["GRADER_ISOLATION"] == "container"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs
    for run in runs:
        for line in run.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and "&&" not in line:
                check_command(line, "kit/")


def test_the_grading_image_has_what_the_gitlab_templates_run():
    """/opt/saturnd/ci/grade.sh and saturnd-grade are put in the image by its build."""
    script = (ROOT / "ci" / "build-grader-image.sh").read_text()
    assert '"$root/ci/grade.sh" "$ctx/kit/ci/"' in script
    dockerfile = (ROOT / "docker" / "grader" / "Dockerfile").read_text()
    assert "COPY kit/ /opt/saturnd/" in dockerfile
    assert "/usr/local/bin/saturnd-grade" in dockerfile


def no_engine_env(tmp_path, **extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADE_PYTHON=sys.executable,
               DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock", **extra)
    env.pop("GRADER_BOX", None)
    return env


def test_grade_sh_refuses_to_grade_unisolated_when_container_isolation_is_asked(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "Makefile").write_text("all:\n\ttouch built\n")
    out = tmp_path / "out"
    p = subprocess.run(["bash", str(ROOT / "ci" / "grade.sh"), str(sub), str(out)],
                       capture_output=True, env=no_engine_env(tmp_path, GRADER_ISOLATION="container",
                                                              GRADER_WORK_DIR=str(tmp_path)),
                       timeout=100)
    assert p.returncode == 2, p.stderr
    assert p.stdout == b""
    assert p.stderr.count(b"\n") == 1, p.stderr
    assert p.stderr.startswith(b"grade: GRADER_ISOLATION=container but "), p.stderr
    assert b"Traceback" not in p.stderr
    assert not (out / "junit.xml").exists()
    assert not (sub / "built").exists()
    assert [q.name for q in tmp_path.iterdir()] != [] and \
        not list(tmp_path.glob("grade-build-*")), "the work folder was left"


def test_batch_trusted_contradicts_container_isolation(tmp_path):
    cls = tmp_path / "class" / "kim"
    cls.mkdir(parents=True)
    (cls / "Makefile").write_text("all:\n\ttrue\n")
    p = subprocess.run([sys.executable, "-m", "grader", "batch", str(cls.parent), "-o",
                        str(tmp_path / "out"), "--trusted"], capture_output=True,
                       env=no_engine_env(tmp_path, GRADER_ISOLATION="container"),
                       cwd=str(ROOT), timeout=100)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count(b"\n") == 1 and b"--trusted" in p.stderr, p.stderr


def test_a_work_folder_inside_the_submission_is_not_copied_into_itself(tmp_path):
    """GitLab's templates put GRADER_WORK_DIR in $CI_PROJECT_DIR, the submission itself:
    the copy into the box must leave the work folder out (it copied itself until the path
    was too long, and the build failed)."""
    import io
    from grader import container
    sub = tmp_path / "project"
    (sub / "src").mkdir(parents=True)
    (sub / "Makefile").write_bytes(b"all:\n")
    (sub / "src" / "a.c").write_bytes(b"int x;\n")
    dest = sub / ".grade-work" / "grade-build-1" / "box" / "src"
    dest.parent.mkdir(parents=True)
    log = io.StringIO()
    container.copy_plain(str(sub), str(dest), None, None, log=log)
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert copied == ["Makefile", "src", "src/a.c"], copied
    assert log.getvalue() == "not copied (the grader's work folder): .grade-work\n"


def test_a_single_grade_refuses_too_when_container_isolation_is_asked(tmp_path):
    p = subprocess.run([sys.executable, "-m", "grader", "--ours", "--cases", "001-list-empty",
                        "--scenarios", "none"], capture_output=True, cwd=str(ROOT),
                       env=no_engine_env(tmp_path, GRADER_ISOLATION="container"), timeout=100)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stdout == b""
    assert p.stderr.startswith(b"saturnd-grade: container isolation: no Docker engine "
                               b"answers ("), p.stderr
    assert p.stderr.count(b"\n") == 1 and p.stderr.endswith(b")\n"), p.stderr
