"""Training: one step of each recipe against PyTorch, and whole runs of both networks on tiny
synthetic data (outputs, exact resume, signals, 1 vs 4 devices, NaN, mismatched checkpoints).

Golden values: tests/fixtures/train/{step,microast_step}.npz, written once by
tools/make_train_fixtures.py (torch 2.13 CPU, float32): pytorch-AdaIN's net.py forward and one
step of train.py's Adam on tests/seeded_weights.py's weights, and MicroAST's Net.forward and one
step of train_microAST.py's Adam on tests/fixtures/microast/weights, each on four 32 px pairs.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx

import seeded_weights
from adain import stylize
from adain.models.adain import weights
from adain.models.microast import weights as mw
from adain.weights import read_native
from train import data, trainer
from train.configs import default, microast, smoke

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "train", "step.npz")
MICROAST_FIXTURE = os.path.join(ROOT, "tests", "fixtures", "train", "microast_step.npz")
LOSSES = {"adain": ("content_loss", "style_loss"),
          "microast": ("content_loss", "style_loss", "contrastive_loss")}
# Runs share the golden step's shapes (batch 4 of 32 px), so one compile serves every test; at
# the recipes' lr (MicroAST's smoke config trains faster), so that 1, 4 and 2 x 2 devices' float
# rounding stays within 1e-5 over the steps compared.
RUN = dict(max_steps=6, save_every=2, log_every=1, sample_every=3, batch_size=4, lr=1e-4)

pytestmark = pytest.mark.slow  # training: compiled train steps, runs in subprocesses, several processes


def _session_dir(tmp_path_factory):
  """A folder shared by this session's xdist workers (each has its own basetemp below it)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="module", autouse=True)
def cache_env(tmp_path_factory):
  """A persistent compilation cache shared by this session's workers and their subprocesses."""
  path = str(_session_dir(tmp_path_factory) / "adain-jax-cache")
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
  old = [getattr(jax.config, n) for n in names]
  jax.config.update(names[0], path)
  jax.config.update(names[1], 0)
  yield {"JAX_COMPILATION_CACHE_DIR": path, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
  for n, v in zip(names, old):
    jax.config.update(n, v)


def _setup(weights, bf16=False, microast_weights=None):
  """The golden step's set-up: AdaIN's recipe from the seeded decoder, or with
  ``microast_weights`` (a folder of its four files) MicroAST's from those."""
  vgg, decoder = weights
  cfg = (microast if microast_weights else default).get_config()
  cfg.vgg, cfg.crop_size, cfg.load_size, cfg.bf16 = str(vgg), 32, 32, bf16
  if microast_weights:
    cfg.init_weights = str(microast_weights)
  else:
    cfg.init_decoder = str(decoder)
  model = trainer.build_model(cfg)
  state, encoder_params = trainer.init_state(model, jax.make_mesh((1,), ("data",)))
  return cfg, trainer.recipe_of(cfg, model), state, encoder_params


def test_one_step_matches_pytorch(weights):
  z = np.load(FIXTURE)
  np.testing.assert_allclose(z["weights_checksum"], seeded_weights.checksum(
      seeded_weights.vgg_state_dict(), seeded_weights.decoder_state_dict()), rtol=1e-12)
  cfg, recipe, state, encoder_params = _setup(weights)
  step, _ = trainer.jit_steps(recipe, jax.make_mesh((1,), ("data",)))
  lr = np.float32(trainer.learning_rate(cfg, 0))
  state, m0 = step(state, encoder_params, z["content"], z["style"], lr)
  np.testing.assert_allclose(m0["content_loss"], z["content_loss0"], rtol=2e-5)
  np.testing.assert_allclose(m0["style_loss"], z["style_loss0"], rtol=2e-5)
  np.testing.assert_allclose(m0["loss"], z["content_loss0"] + 10 * z["style_loss0"], rtol=2e-5)
  # Adam's first update moves each weight by about lr: the last layer's bias shows its sign.
  np.testing.assert_allclose(state["params"]["convs"][8]["bias"], z["bias_28_after"], atol=1e-7)
  # The losses after the update (same images): the whole update, through the whole network.
  _, m1 = step(state, encoder_params, z["content"], z["style"],
               np.float32(trainer.learning_rate(cfg, 1)))
  np.testing.assert_allclose(m1["content_loss"], z["content_loss1"], rtol=2e-3)
  np.testing.assert_allclose(m1["style_loss"], z["style_loss1"], rtol=2e-3)


def test_microast_step_matches_pytorch(weights, microast_weights):
  """MicroAST's three losses, and every bias and the last kernel after Adam's first update."""
  z = np.load(MICROAST_FIXTURE)
  np.testing.assert_allclose(z["vgg_checksum"], seeded_weights.checksum(
      seeded_weights.vgg_state_dict()), rtol=1e-12)
  cfg, recipe, state, encoder_params = _setup(weights, microast_weights=microast_weights)
  step, _ = trainer.jit_steps(recipe, jax.make_mesh((1,), ("data",)))
  state, m0 = step(state, encoder_params, z["content"], z["style"],
                   np.float32(trainer.learning_rate(cfg, 0)))
  for k in LOSSES["microast"]:
    np.testing.assert_allclose(m0[k], z[f"{k}0"], rtol=1e-4, err_msg=k)
  np.testing.assert_allclose(m0["loss"], z["content_loss0"] + 3 * z["style_loss0"]
                             + 3 * z["contrastive_loss0"], rtol=1e-4)
  sds = mw.state_dicts_of(nnx.merge(recipe.trained, state["params"]))
  after = [k for k in z if k.startswith("after/")]
  assert len(after) == 9 + 9 + 4 + 9 + 1  # each part's biases (encoders, modulator, decoder), a kernel
  checked = []
  for k in after:
    _, part, key = k.split("/")
    # Adam's first step moves each weight by lr * g / (|g| + 1e-8): where a gradient is float32
    # noise, so is the step. Noise: |g| under 1e-4 of the tensor's largest, or under 1e-6 (the
    # content encoder's last bias is all noise: AdaIN normalises it away).
    g = np.abs(z[k.replace("after/", "grad/")])
    clear = g > max(1e-6, 1e-4 * g.max())
    checked.append(clear.mean())
    np.testing.assert_allclose(sds[part][key][clear], z[k][clear], atol=1e-7, err_msg=k)
  assert np.mean(checked) > 0.8
  _, m1 = step(state, encoder_params, z["content"], z["style"],
               np.float32(trainer.learning_rate(cfg, 1)))
  for k in LOSSES["microast"]:
    np.testing.assert_allclose(m1[k], z[f"{k}1"], rtol=2e-3, err_msg=k)


@pytest.mark.parametrize("network", ["adain", "microast"])
def test_bf16_losses_are_close_to_float32(weights, microast_weights, network):
  """bf16 compute (forward only: compiling the bf16 step too would double this file's time)."""
  z = np.load(FIXTURE if network == "adain" else MICROAST_FIXTURE)
  _, recipe, state, encoder_params = _setup(
      weights, bf16=True, microast_weights=microast_weights if network == "microast" else None)
  _, parts, _ = jax.jit(functools.partial(trainer.forward, recipe))(
      state["params"], encoder_params, z["content"], z["style"])
  for k in LOSSES[network]:
    np.testing.assert_allclose(parts[k], z[f"{k}0"], rtol=0.1, err_msg=k)


@pytest.fixture(scope="module", params=tuple(LOSSES))
def network(request):
  """The recipe of a whole-run test: every such test runs for both networks."""
  return request.param


def _cfg(network="adain", **kw):
  cfg = smoke.get_config(network)
  cfg.update({**RUN, **kw})
  return cfg


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


def _exported(workdir):
  """({file/key: array} of a workdir's exported weights, {the steps they were saved at})."""
  arrays, steps = {}, set()
  for name in sorted(os.listdir(workdir)):
    if name.endswith(".npz"):
      sd, meta = read_native(os.path.join(workdir, name))
      arrays.update({f"{name}/{k}": v for k, v in sd.items()})
      steps.add(meta["step"])
  return arrays, steps


def _assert_same_run(a, b):
  """Bit for bit: the exported weights and every logged loss."""
  (sd_a, steps_a), (sd_b, steps_b) = _exported(a), _exported(b)
  assert steps_a == steps_b == {"6"} and sorted(sd_a) == sorted(sd_b)
  for k in sd_a:
    np.testing.assert_array_equal(sd_a[k], sd_b[k], err_msg=k)
  ma, mb = _metrics(a), _metrics(b)
  assert [m["step"] for m in mb] == [m["step"] for m in ma] == list(range(1, 7))
  for x, y in zip(ma, mb):
    assert {k: v for k, v in x.items() if "loss" in k} == {
        k: v for k, v in y.items() if "loss" in k}, x["step"]


def _train_cli(workdir, network, *flags, env=None):
  """`python -m train` in a subprocess sharing a compilation cache with its siblings."""
  args = [sys.executable, "-m", "train", "--workdir", str(workdir),
          "--config", os.path.join(ROOT, f"train/configs/smoke.py:{network}")]
  args += [f"--config.{k}={v}" for k, v in RUN.items()] + list(flags)
  return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=600):
  end = time.time() + timeout
  while not predicate():
    assert proc.poll() is None, proc.communicate()
    assert time.time() < end, "timed out"
    time.sleep(0.05)


def _logged_step(workdir):
  try:
    return max(m["step"] for m in _metrics(workdir))
  except (FileNotFoundError, ValueError):
    return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory, network):
  """An uninterrupted 6-step run, made once per session: a second worker waits and reuses it."""
  workdir = _session_dir(tmp_path_factory) / f"{network}-reference"
  with open(f"{workdir}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (workdir / "checkpoints" / "6").is_dir():
      assert trainer.train_and_evaluate(_cfg(network), str(workdir)) == 6
  return workdir


def test_smoke_run_writes_everything(reference, network, tmp_path):
  records = _metrics(reference)
  assert set(records[0]) >= {"step", "loss", *LOSSES[network], "lr", "steps_per_sec",
                             "devices", "skipped_content", "skipped_style"}
  assert records[0]["devices"] == 1 and records[0]["skipped_content"] == 0
  lr = _cfg(network).lr
  assert records[0]["lr"] == lr and records[1]["lr"] == lr / (1 + 5e-5)
  import tensorflow as tf
  from tensorflow.core.util import event_pb2

  events = [event_pb2.Event.FromString(r.numpy()) for f in os.listdir(reference / "tensorboard")
            for r in tf.data.TFRecordDataset(str(reference / "tensorboard" / f))]
  tags = {(v.tag, e.step) for e in events for v in e.summary.value}
  assert {(k, s) for k in ("loss", *LOSSES[network], "lr") for s in range(1, 7)} <= tags
  assert sorted(os.listdir(reference / "samples")) == ["step_0000003.png", "step_0000006.png"]
  assert sorted(os.listdir(reference / "checkpoints")) == ["2", "4", "6"]
  # What `adain.stylize --decoder WORKDIR` / `--model microast --weights WORKDIR` reads.
  if network == "adain":
    assert len(weights.load_weights(reference, "decoder")) == 18
  else:
    assert set(mw.state_dicts(reference, download=False)) == set(mw.PARTS)
    drawn = reference / "synthetic"  # MicroAST's workdir alone stylizes (no VGG needed)
    assert stylize.main(["--model", "microast", "--weights", str(reference), "--content",
                         str(drawn / "content" / "content_000.png"), "--style",
                         str(drawn / "style" / "style_000.png"), "--output", str(tmp_path),
                         "--content-size", "0", "--style-size", "0"]) == 0
    assert (tmp_path / "content_000_stylized_style_000.jpg").is_file()
  assert _exported(reference)[1] == {"6"}
  assert trainer.train_and_evaluate(_cfg(network), str(reference)) == 6  # finished: nothing to do


def test_resume_is_bit_for_bit(reference, network, tmp_path):
  assert trainer.train_and_evaluate(_cfg(network, max_steps=3), str(tmp_path)) == 3
  assert trainer.train_and_evaluate(_cfg(network), str(tmp_path)) == 6
  _assert_same_run(reference, tmp_path)


def test_sigterm_saves_and_sigkill_resumes(reference, network, tmp_path, cache_env, monkeypatch):
  batches = data.batches

  def sigterm_after_two(*args):
    for i, b in enumerate(batches(*args)):
      if i == 2:  # lands as step 3's batch is read: step 3 runs, is saved, and the run stops
        os.kill(os.getpid(), signal.SIGTERM)
      yield b

  monkeypatch.setattr(data, "batches", sigterm_after_two)
  with pytest.raises(trainer.Interrupted, match="stopped by SIGTERM at step 3"):
    trainer.train_and_evaluate(_cfg(network, save_every=100), str(tmp_path))
  assert os.listdir(tmp_path / "checkpoints") == ["3"]
  monkeypatch.undo()

  proc = _train_cli(tmp_path, network, env=cache_env)  # resumes, and is killed mid-run
  _wait_for(lambda: _logged_step(tmp_path) > 3, proc)
  proc.kill()
  proc.communicate()
  assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
  assert trainer.train_and_evaluate(_cfg(network), str(tmp_path)) == 6
  assert not [d for d in os.listdir(tmp_path / "checkpoints") if "tmp" in d]
  _assert_same_run(reference, tmp_path)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(workdir, network, cache_env, *flags):
  """`python -m train` as processes 0 and 1 of a run on loopback, with 2 CPU devices each."""
  coordinator = f"127.0.0.1:{_free_port()}"
  env = {**cache_env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  return [_train_cli(workdir, network, "--coordinator", coordinator, "--num_processes=2",
                     f"--process_id={i}", *flags, env=env) for i in range(2)]


def _finish(procs, timeout=600):
  """Waits for every process; kills leftovers (a hung peer) so nothing outlives the test."""
  try:
    outs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.communicate()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err
  return outs


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, network, cache_env):
  """An uninterrupted 6-step run of two processes with two devices each, made once per session
  (as `reference`)."""
  workdir = _session_dir(tmp_path_factory) / f"{network}-two-processes"
  with open(f"{workdir}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (workdir / "checkpoints" / "6").is_dir():
      _finish(_two_processes(workdir, network, cache_env))
  return workdir


def test_one_four_and_two_by_two_devices_agree(reference, two_processes, network, tmp_path,
                                               cache_env):
  """1 process x 1 device, 1 x 4 and 2 x 2: the same global batches give the same losses."""
  _finish([_train_cli(tmp_path, network, "--config.max_steps=3", "--config.sample_every=100",
                      env={**cache_env, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"})])
  one, four, two = _metrics(reference)[:3], _metrics(tmp_path), _metrics(two_processes)[:3]
  assert [m["devices"] for m in one + four + two] == [1] * 3 + [4] * 6
  for a, b, c in zip(one, four, two):
    for k in ("loss", *LOSSES[network]):
      np.testing.assert_allclose(b[k], a[k], rtol=1e-5, err_msg=f"step {a['step']} {k}")
      np.testing.assert_allclose(c[k], a[k], rtol=1e-5, err_msg=f"step {a['step']} {k}")
  # Only process 0 writes the reports and the exported decoder; both wrote the checkpoints.
  assert sorted(os.listdir(two_processes / "checkpoints")) == ["2", "4", "6"]
  assert sorted(os.listdir(two_processes / "samples")) == ["step_0000003.png", "step_0000006.png"]
  assert _exported(two_processes)[1] == {"6"}


def test_two_processes_killed_resume_exactly(two_processes, network, tmp_path, cache_env):
  procs = _two_processes(tmp_path, network, cache_env)
  try:
    for p in procs:
      _wait_for(lambda: _logged_step(tmp_path) > 2, p)
  finally:
    for p in procs:
      p.kill()
      p.communicate()
  assert -signal.SIGKILL in [p.returncode for p in procs]  # killed mid-run, not finished
  assert _logged_step(tmp_path) < 6
  _finish(_two_processes(tmp_path, network, cache_env))
  assert not [d for d in os.listdir(tmp_path / "checkpoints") if "tmp" in d]
  _assert_same_run(two_processes, tmp_path)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  with pytest.raises(trainer.TrainError, match=r"loss is (nan|inf) at step (\d)") as e:
    trainer.train_and_evaluate(_cfg(lr=1e12, save_every=1), str(tmp_path))
  bad = int(str(e.value).split(" at step ")[1].split(" ")[0])
  assert f"last good checkpoint, step {bad - 1}" in str(e.value)
  assert max(int(d) for d in os.listdir(tmp_path / "checkpoints")) == bad - 1


def test_refuses_a_checkpoint_of_another_config(reference, network, tmp_path):
  with pytest.raises(trainer.TrainError, match="batch_size: checkpoint 4, now 8"):
    trainer.train_and_evaluate(_cfg(network, batch_size=8), str(reference))
  other = "adain" if network == "microast" else "microast"
  with pytest.raises(trainer.TrainError, match=f"model: checkpoint '{network}', now '{other}'"):
    trainer.train_and_evaluate(_cfg(other), str(reference))
  # Same config, but a checkpoint holding another state structure.
  ckpt = trainer.Checkpoints(str(tmp_path), _cfg(), None)
  meta = {"format": trainer.CHECKPOINT_FORMAT, "run_config": ckpt.run_config(),
          "content_pos": [0], "style_pos": [0]}
  ckpt.manager.save(1, args=ocp.args.Composite(
      state=ocp.args.StandardSave({"params": np.zeros(3, np.float32)}),
      meta=ocp.args.JsonSave(meta)))
  ckpt.close()
  with pytest.raises(trainer.TrainError, match="another structure"):
    trainer.train_and_evaluate(_cfg(), str(tmp_path))
