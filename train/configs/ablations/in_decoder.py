"""AdaIN with an InstanceNorm decoder, one of the paper's Fig. 6 ablations.

Affine InstanceNorm (each image's own statistics, learnt scale and shift) after every decoder
conv but the last. Everything else is default.py.

Command (or `make ablations`, which trains all four variants on the same data and seed):
  python -m train --workdir workdir/ablations/in_decoder \
      --config train/configs/ablations/in_decoder.py \
      --config.content=tfds:coco/2017 --config.style=data/wikiart

What the paper reports (Huang & Belongie 2017, Fig. 6): the highest losses of all variants, the
style loss most of all: instance norm normalises each output towards one style, undoing the
style AdaIN put into the code. Its images come out flat and poorly stylized.
"""

from __future__ import annotations

from train.configs import default


def get_config():
  c = default.get_config()
  c.decoder_norm = "instance"
  return c
