"""`python -m train --workdir DIR --config train/configs/default.py [--config.FIELD=VALUE]`."""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Run folder: checkpoints, metrics, samples, decoder.npz.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).")
config_flags.DEFINE_config_file("config", "train/configs/default.py", "Training config file.",
                                lock_config=True)
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  import jax
  import tensorflow as tf

  from adain.errors import AdainError
  from train import trainer

  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  tf.config.set_visible_devices([], "GPU")  # tf.data only: the accelerators belong to JAX
  if FLAGS.distributed:
    jax.distributed.initialize()
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
  app.run(lambda argv: sys.exit(main(argv)))
