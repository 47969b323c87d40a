"""Smoke test of the benchmark suite: a tiny run end to end, and the JSON's shape.

No timing is asserted (the figures of a tiny run mean nothing); what is checked
is that every section ran against the real daemon and client, and that the
results file has the documented structure, consistent ratios and targets.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from bench.rows import row, table  # noqa: E402
from bench.common import percentile  # noqa: E402

ROW_KEYS = {"section", "key", "what", "unit", "value", "p99", "n", "baseline", "baseline_value",
            "ratio", "target", "met", "note"}

# keys present in every mode (sizes in some keys depend on the mode)
EXPECTED = {
    "1 startup": {"python_IS_pass", "cassini_l_empty", "cassini_l_full", "python_pass", "bare_exchange",
                  "cassini_imports"},
    "2 service": {"list_10", "list_kept", "list_linearity", "tx_10", "stdout_small", "stdout_big",
                  "tx_linearity", "bare_fsync", "bare_fsync_dir", "create", "sw_time", "remove",
                  "rt_list_big", "rt_small", "rt_create"},
    "3 throughput": {"cassini_creates", "api_creates"},
    "4 scheduling": {"manual_first_start", "manual_last_start", "manual_last_recorded",
                     "manual_advance_reply", "manual_daemon_cpu"},
    "5 memory": {"idle_rss", "idle_hwm", "full_rss", "full_rss_after_list", "full_hwm"},
    # the C client rows need a C compiler (checked below when there is one)
    "6 versus": {"startup_big", "disk_per_task"},
}
C_ROWS = {"c_list", "c_tx", "c_so", "c_create", "c_create_durable", "c_remove",
          "c_remove_durable"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    path = out / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--quiet", "--json", str(path),
                           "--dir", str(out)],
                          cwd=ROOT, capture_output=True, timeout=80)
    return proc, path, out


@pytest.mark.timeout(90)
def test_tiny_run_completes_and_prints_the_table(tiny_run):
    proc, path, out = tiny_run
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-2000:] + \
        proc.stderr.decode(errors="replace")[-2000:]
    stdout = proc.stdout.decode()
    assert "median/p50" in stdout and "targets met:" in stdout
    assert f"results written to {path}" in stdout
    doc = json.loads(path.read_bytes())
    for r in doc["results"]:
        assert r["what"] in stdout
    # the working directory (daemons' data, FIFOs) is removed afterwards
    assert [p.name for p in out.iterdir()] == ["results.json"]


@pytest.mark.timeout(90)
def test_tiny_run_json_shape(tiny_run):
    proc, path, _ = tiny_run
    doc = json.loads(path.read_bytes())
    assert doc["schema"] == 1
    assert doc["mode"] == "tiny" and doc["system_clock"] is False
    assert doc["errors"] == []
    assert doc["command"].startswith("python -m bench ")
    assert isinstance(doc["elapsed_s"], (int, float)) and doc["elapsed_s"] > 0
    for key in ("python", "executable", "platform", "cpus", "cpu_model", "filesystem", "git"):
        assert key in doc["machine"]
    got = {}
    for r in doc["results"]:
        assert set(r) - {"extra"} == ROW_KEYS, r
        got.setdefault(r["section"], set()).add(r["key"])
        assert isinstance(r["value"], (int, float)) and math.isfinite(r["value"]) and r["value"] >= 0
        if r["baseline_value"] is not None:
            assert r["ratio"] == pytest.approx(r["value"] / r["baseline_value"])
        else:
            assert r["ratio"] is None
        if r["target"] is not None:
            measured = r[r["target"]["on"]] if r["target"]["on"] != "value" else r["value"]
            assert r["met"] is (measured <= r["target"]["max"]), r
        else:
            assert r["met"] is None
    assert set(got) == set(EXPECTED)
    for section, keys in EXPECTED.items():
        assert keys <= got[section], (section, keys - got[section])
    if shutil.which("gcc") or shutil.which("cc"):
        assert C_ROWS <= got["6 versus"], C_ROWS - got["6 versus"]
    assert {k for k in got["6 versus"] if k.startswith("cassini_l_")} == \
        {"cassini_l_100", "cassini_l_500"}
    # one LIST row per size, one TX row per history length (sizes depend on the mode)
    assert {k for k in got["2 service"] if k.startswith("list_") and k[5:].isdigit()} == \
        {"list_10", "list_50", "list_200"}
    assert {k for k in got["2 service"] if k.startswith("tx_") and k[3:].isdigit()} == \
        {"tx_10", "tx_100", "tx_1000"}
    missed = sorted(r["key"] for r in doc["results"] if r["met"] is False)
    assert sorted(doc["targets_missed"]) == missed
    # every target is attached to its row, whatever the mode
    targets = {r["key"]: r["target"] for r in doc["results"] if r["target"]}
    assert targets["cassini_l_empty"] == {"on": "ratio", "max": 1.25}
    # against the floor: an isolated interpreter, as the launcher starts it
    assert {r["key"]: r["baseline"] for r in doc["results"]}["cassini_l_empty"] == \
        "python -I -S -c pass"
    assert targets["cassini_l_full"] == {"on": "ratio", "max": 1.5}
    assert targets["list_10"] == {"on": "value", "max": 1.0}
    assert targets["create"] == {"on": "ratio", "max": 1.5}
    assert targets["idle_rss"] == {"on": "value", "max": 25.0}
    assert targets["full_hwm"] == {"on": "value", "max": 60.0}


def test_percentile_is_nearest_rank():
    data = list(range(1, 101))
    assert percentile(data, 50) == 50
    assert percentile(data, 99) == 99
    assert percentile(data, 100) == 100
    assert percentile([3.0], 99) == 3.0
    assert percentile([5, 1, 4, 2, 3], 50) == 3


def test_row_target_and_ratio():
    r = row("s", "k", "thing", 3.0, "ms", baseline="b", baseline_value=2.0, limit=1.5, on="ratio")
    assert r["ratio"] == 1.5 and r["met"] is True
    r = row("s", "k", "thing", 3.1, "ms", baseline="b", baseline_value=2.0, limit=1.5, on="ratio")
    assert r["met"] is False
    r = row("s", "k", "thing", 51.0, "ms", limit=50.0)
    assert r["met"] is False and r["ratio"] is None
    text = table([r])
    assert "thing" in text and "NO" in text and "<= 50.0 ms" in text
    md = table([r], markdown=True)
    assert md.splitlines()[0].startswith("| section |") and "| NO |" in md
