"""AdaIN with a BatchNorm decoder, one of the paper's Fig. 6 ablations.

BatchNorm after every decoder conv but the last: batch statistics in training; running averages
(torch's momentum 0.1) kept in the train state, checkpointed, exported in WORKDIR/decoder.npz
and used at inference. Everything else is default.py.

Command (or `make ablations`, which trains all four variants on the same data and seed):
  python -m train --workdir workdir/ablations/bn_decoder \
      --config train/configs/ablations/bn_decoder.py \
      --config.content=tfds:coco/2017 --config.style=data/wikiart

What the paper reports (Huang & Belongie 2017, Fig. 6): both losses end higher than with the
plain decoder (and lower than with the instance norm decoder): normalising each layer works
against the single style AdaIN imposes on the code.
"""

from __future__ import annotations

from train.configs import default


def get_config():
  c = default.get_config()
  c.decoder_norm = "batch"
  return c
