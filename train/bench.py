"""Training speed: `python -m train.bench [--models adain,microast --crop_size 256 --batch_size 8
--bf16 --steps 10]`.

Prints one JSON line per network and setting with the jitted train step's steps (and images) per
second on all local devices, on device-resident random batches: the step itself, not the input
pipeline. tools/bench_torch_reference.py --train [--model microast] sets them beside PyTorch's.
"""

from __future__ import annotations

import json
import statistics
import time

from absl import app, flags

flags.DEFINE_integer("crop_size", 256, "Square crop side (pixels).")
flags.DEFINE_integer("batch_size", 8, "Global batch size.")
flags.DEFINE_integer("steps", 10, "Timed steps (their median), after one warm-up (compiling) step.")
flags.DEFINE_bool("bf16", False, "Also time bfloat16 compute.")
flags.DEFINE_list("models", ["adain", "microast"], "Networks whose recipe to time.")
FLAGS = flags.FLAGS


def benchmark_train(crop_size: int, batch_size: int, steps: int, bf16: bool = False,
                    network: str = "adain") -> dict:
  """Steps per second of the network's train step (random VGG and a fresh init: the speed is
  the same)."""
  import jax
  import numpy as np

  from train import trainer
  from train.configs import default, microast

  cfg = (microast if network == "microast" else default).get_config()
  cfg.vgg, cfg.crop_size, cfg.load_size = "random", crop_size, crop_size
  cfg.batch_size, cfg.bf16 = batch_size, bf16
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  model = trainer.build_model(cfg)
  recipe = trainer.recipe_of(cfg, model)
  state, encoder_params = trainer.init_state(model, mesh)
  step, _ = trainer.jit_steps(recipe, mesh)
  _, batch = trainer.shardings(mesh)
  rng = np.random.default_rng(0)
  content, style = (jax.device_put(rng.integers(0, 256, (batch_size, crop_size, crop_size, 3),
                                                np.uint8), batch) for _ in range(2))
  lr = np.float32(cfg.lr)
  t0 = time.perf_counter()
  state, metrics = step(state, encoder_params, content, style, lr)
  jax.block_until_ready(metrics)
  first = time.perf_counter() - t0
  times = []
  for _ in range(steps):  # each step timed alone: the median shrugs off a busy machine's spikes
    t1 = time.perf_counter()
    state, metrics = step(state, encoder_params, content, style, lr)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t1)
  seconds = statistics.median(times)
  return {"bench": "train_step", "model": network, "crop_size": crop_size, "batch_size": batch_size,
          "dtype": "bf16" if bf16 else "fp32", "devices": jax.device_count(),
          "platform": jax.devices()[0].platform, "steps_per_sec": 1 / seconds,
          "images_per_sec": batch_size / seconds, "first_step_sec": first}


def main(argv):
  del argv
  for model in FLAGS.models:
    for bf16 in (False, True) if FLAGS.bf16 else (False,):
      print(json.dumps(benchmark_train(FLAGS.crop_size, FLAGS.batch_size, FLAGS.steps, bf16,
                                       model)), flush=True)


if __name__ == "__main__":
  from adain import runtime

  runtime.set_up("train.bench")  # as `python -m train` does
  app.run(main)
