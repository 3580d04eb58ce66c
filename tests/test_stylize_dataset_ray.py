"""python -m adain.stylize_dataset --ray: the one-host run's files on Ray Data, through lost actors
and a killed driver.

One local Ray cluster of 2 CPUs for the module (``ray start --head --block``, on 127.0.0.1, no
dashboard, no usage reports); the runs join it with ``--ray 127.0.0.1:PORT``. Under xdist the
tests share one worker (``make test`` runs ``--dist loadfile``), so one cluster.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from adain.commands import stylize_dataset
from conftest import write_image
from dataset_tree import files, flags, make_tree, manifest

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
# For the cluster and the drivers that join it: Ray turns 127.0.0.1 into the host's address
# unless in its one-machine mode (named for macOS); a token of the session's own, whatever
# ~/.ray/auth_token holds (a driver joining HOST:PORT never takes that file on its own).
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
       "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
TIMEOUT = 300

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # a Ray cluster and drivers in their own processes


def _free_ports(n: int) -> list[int]:
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


@pytest.fixture(scope="module")
def cluster():
  """The address of a local Ray head with 2 CPUs; its processes are ended by id at the end."""
  gcs, client, agent, agent_grpc, env_agent, metrics = _free_ports(6)
  temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths live below it
  env = {**ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
  log = open(Path(temp, "start.log"), "w")
  head = subprocess.Popen(
      [str(RAY), "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0", "--port", str(gcs),
       "--node-ip-address", "127.0.0.1", "--include-dashboard=false", "--disable-usage-stats",
       "--temp-dir", temp, "--ray-client-server-port", str(client), "--dashboard-agent-listen-port",
       str(agent), "--dashboard-agent-grpc-port", str(agent_grpc), "--runtime-env-agent-port",
       str(env_agent), "--metrics-export-port", str(metrics)],
      stdout=log, stderr=subprocess.STDOUT, env=env, cwd=temp)
  deadline = time.monotonic() + 120
  while "Ray runtime started" not in Path(temp, "start.log").read_text():
    assert head.poll() is None and time.monotonic() < deadline, Path(temp, "start.log").read_text()
    time.sleep(0.1)
  yield f"127.0.0.1:{gcs}", head.pid
  for p in [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]:
    p.kill()  # by id; a SIGTERM makes --block drain the node first, which can hang
  head.wait()
  log.close()
  shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
  """test_stylize_dataset's tree, more contents (so that kills land mid-run), a broken style."""
  c, s = make_tree(tmp_path_factory.mktemp("tree"))
  for i in range(8):
    write_image(c / "cats" / f"x{i}.png", 40, 48, 20 + i)
  (s / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\n")
  return c, s


@pytest.fixture(scope="module")
def one_host(tree, weights, tmp_path_factory):
  """The one-host run's folder and stderr (error lines and counts)."""
  out = tmp_path_factory.mktemp("one-host")
  done = subprocess.run(_cli(tree, weights, out), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
  assert done.returncode == 1, done.stderr
  return out, _report(done.stderr)


def _cli(tree, weights, out, *more):
  return [sys.executable, "-m", "adain.stylize_dataset", *flags(tree, out, weights, "--num-styles", "2"), *more]


def _report(stderr: str) -> tuple[list[str], tuple[str, ...]]:
  """The error lines, sorted, and the summary's counts: written, skipped, failed."""
  counts = re.search(r"wrote (\d+) image\(s\) .* skipped (\d+) already done, (\d+) failed", stderr)
  return sorted(line for line in stderr.splitlines() if line.startswith("error")), counts.groups()


def _rows(out: Path) -> list[str]:
  return sorted(map(json.dumps, manifest(out / "manifest.jsonl")))


def assert_same_run(out: Path, ref: Path) -> None:
  """The same files, byte for byte, and the same manifest rows (order aside)."""
  assert files(out) == files(ref)
  for f in files(ref):
    if f != "manifest.jsonl":
      assert (out / f).read_bytes() == (ref / f).read_bytes(), f
  assert _rows(out) == _rows(ref)


def _wait_for_output(out: Path, proc: subprocess.Popen) -> None:
  deadline = time.monotonic() + TIMEOUT
  while not any(not Path(f).name.startswith(".") and f != "manifest.jsonl" for f in files(out) if out.exists()):
    assert proc.poll() is None, proc.communicate()
    assert time.monotonic() < deadline
    time.sleep(0.005)


def test_ray_run_writes_the_one_host_files(cluster, tree, weights, one_host, tmp_path):
  ref, (errors, counts) = one_host
  out = tmp_path / "out"
  done = subprocess.run(_cli(tree, weights, out, "--ray", cluster[0]), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
  assert done.returncode == 1, done.stderr
  assert _report(done.stderr) == (errors, counts)
  assert len(errors) == 2 and int(counts[0]) > 0 and int(counts[2]) > 2  # a broken content, a broken style
  assert_same_run(out, ref)


def _stylize_actors(cluster) -> list[psutil.Process]:
  """The cluster's stylizing actors' processes (a worker that exits while they are listed, a
  zombie for a moment, is none of them)."""
  actors = []
  for p in psutil.Process(cluster[1]).children(recursive=True):
    try:
      if "_Stylize" in " ".join(p.cmdline()):
        actors.append(p)
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess is a NoSuchProcess
      pass
  return actors


def test_a_killed_actor_is_replaced_and_nothing_is_lost(cluster, tree, weights, one_host, tmp_path):
  out = tmp_path / "out"
  earlier = set(_stylize_actors(cluster))  # an earlier run's actor may not have exited yet
  proc = subprocess.Popen(_cli(tree, weights, out, "--ray", cluster[0]), cwd=ROOT, env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  _wait_for_output(out, proc)
  actors = [p for p in _stylize_actors(cluster) if p not in earlier]
  assert len(actors) == 1, actors
  actors[0].send_signal(signal.SIGKILL)
  written = len([f for f in files(out) if not Path(f).name.startswith(".")])
  assert written < len(files(one_host[0])), "the kill did not land mid-run"
  _, err = proc.communicate(timeout=TIMEOUT)
  assert proc.returncode == 1, err
  assert_same_run(out, one_host[0])


def test_a_killed_driver_leaves_whole_files_and_the_command_resumes(cluster, tree, weights, one_host, tmp_path):
  ref = one_host[0]
  out = tmp_path / "out"
  cmd = _cli(tree, weights, out, "--ray", cluster[0])
  proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  _wait_for_output(out, proc)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait() == -signal.SIGKILL
  finished = [f for f in files(out) if not Path(f).name.startswith(".") and f != "manifest.jsonl"]
  assert 0 < len(finished) < len(files(ref)) - 1, "the kill did not land mid-run"
  for f in finished:
    assert (out / f).read_bytes() == (ref / f).read_bytes(), f
  done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
  assert done.returncode == 1, done.stderr
  assert f"{len(finished)} already done" in done.stderr
  assert_same_run(out, ref)


def test_shard_and_ray_together_are_refused(tree, weights, tmp_path, capsys):
  for more in (["--shard", "1/2", "--ray"], ["--ray-actors", "2"]):
    with pytest.raises(SystemExit) as e:
      stylize_dataset.main(flags(tree, tmp_path / "o", weights, *more))
    assert e.value.code == 2
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and "--shard and --ray do not go together" in err[0] and "--ray-actors" in err[1]
  assert not (tmp_path / "o").exists()


def test_without_ray_one_line_says_what_to_install(tree, weights, tmp_path):
  code = ("import sys; sys.modules['ray'] = None\nfrom adain import stylize_dataset\n"
          "sys.exit(stylize_dataset.main(sys.argv[1:]))")
  done = subprocess.run([sys.executable, "-c", code, *flags(tree, tmp_path / "o", weights, "--ray")],
                        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
  assert done.returncode == 1
  assert done.stderr == "error: --ray needs Ray Data: pip install 'adain[ray]'\n"


def test_ray_run_of_microast_writes_the_one_host_files(cluster, tree, microast_weights, tmp_path):
  """--model microast: the same files on Ray as on one host (its codes travel as stacked fields)."""
  runs = {}
  for name, more in (("one-host", ()), ("ray", ("--ray", cluster[0]))):
    out = tmp_path / name
    done = subprocess.run(_cli(tree, microast_weights, out, *more), cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 1, done.stderr  # the broken content and style, as with AdaIN
    runs[name] = out, _report(done.stderr)
  assert runs["ray"][1] == runs["one-host"][1]
  assert_same_run(runs["ray"][0], runs["one-host"][0])
