"""MicroAST's recipe (Wang et al. 2023, as its train_microAST.py and net_microAST.py): all four
parts (content encoder, style encoder, modulator, decoder) trained from scratch.

Command (or `make train MODEL=microast CONTENT=... STYLE=...`):
  python -m train --workdir workdir/microast --config train/configs/microast.py \
      --config.content=tfds:coco/2017 --config.style=data/wikiart

Expected: as the AdaIN recipe (160k steps of batch 8, 256 px crops of images resized to a 512 px
shorter side, Adam 1e-4 with inverse-time decay 5e-5), but loss = content + 3 * style + 3 *
contrastive: content is relu4_1 of the output against the content image's, style AdaIN's
(mean and std at relu1_1..relu4_1), contrastive the style signal contrastive loss
(adain.models.losses). WORKDIR's four microast_*.npz then stylize with `python -m adain.stylize
--model microast --weights WORKDIR`. --config.init_weights=DIR fine-tunes the published weights
(a folder of its four files) or another run's workdir.
"""

from __future__ import annotations

from train.configs import default


def get_config():
  c = default.get_config()
  c.model = "microast"
  c.style_weight = 3.0
  c.contrastive_weight = 3.0
  return c
