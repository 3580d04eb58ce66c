"""Enc-Concat-Dec, the paper's first Fig. 6 ablation: AdaIN replaced by channel concatenation.

The decoder sees the content's relu4_1 features stacked with the style's (resized, nearest, to
the content code's size): 1024 channels into its first conv. Everything else is default.py.

Command (or `make ablations`, which trains all four variants on the same data and seed):
  python -m train --workdir workdir/ablations/concat --config train/configs/ablations/concat.py \
      --config.content=tfds:coco/2017 --config.style=data/wikiart

What the paper reports (Huang & Belongie 2017, Fig. 6): its style loss falls low, close to
AdaIN's, but its content loss stays high: the decoder learns to copy the style's structure into
the output and the content's is lost. Stylize with `python -m adain.stylize --decoder WORKDIR`
(style images only: it has no style codes, mixing, masks or alpha).
"""

from __future__ import annotations

from train.configs import default


def get_config():
  c = default.get_config()
  c.fusion = "concat"
  return c
