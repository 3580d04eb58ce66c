"""`python -m train --workdir DIR --config train/configs/default.py [--config.FIELD=VALUE]`.

Several processes (hosts): the same command on each, plus `--coordinator HOST:PORT` (process 0's
host and a free port), `--num_processes N` and `--process_id I`.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Run folder: checkpoints, metrics, samples, decoder.npz.")
flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0: starts a multi-process run "
                    "(jax.distributed) with --num_processes and --process_id.")
flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.", lower_bound=1)
flags.DEFINE_integer("process_id", None, "This process's index, 0 .. num_processes - 1.",
                     lower_bound=0)
config_flags.DEFINE_config_file("config", "train/configs/default.py", "Training config file.",
                                lock_config=True)
flags.mark_flags_as_required(["workdir"])
flags.register_multi_flags_validator(
    ["coordinator", "num_processes", "process_id"],
    lambda f: (f["coordinator"] is None) == (f["num_processes"] is None) == (f["process_id"] is None)
    and (f["process_id"] is None or f["process_id"] < f["num_processes"]),
    "--coordinator, --num_processes and --process_id go together, with process_id < num_processes")


def start_processes(coordinator: str, num_processes: int, process_id: int) -> None:
  """Joins the run's processes; on CPUs (no accelerator) collectives go over TCP (gloo)."""
  import jax

  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator, num_processes, process_id)


def main(argv):
  del argv
  import tensorflow as tf

  from adain.errors import AdainError
  from train import trainer

  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  tf.config.set_visible_devices([], "GPU")  # tf.data only: the accelerators belong to JAX
  if FLAGS.coordinator:
    start_processes(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  try:
    trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except trainer.Interrupted as e:
    print(e, file=sys.stderr)
    return 128 + e.signum
  except AdainError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  from adain import runtime

  runtime.set_up("train")
  app.run(lambda argv: sys.exit(main(argv)))
