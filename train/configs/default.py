"""The paper's decoder recipe (Huang & Belongie 2017, as pytorch-AdaIN's train.py).

Command (or `make train CONTENT=... STYLE=...`):
  python -m train --workdir workdir/adain --config train/configs/default.py \
      --config.content=tfds:coco/2017 --config.style=data/wikiart

Expected: 160k steps of batch 8 (256 px crops of images resized to a 512 px shorter side), Adam
1e-4 with inverse-time decay 5e-5, loss = content + 10 * style. The loss falls fast in the first
few thousand steps; WORKDIR/decoder.npz then stylizes with `python -m adain.stylize --decoder
WORKDIR`. Needs checkpoints/vgg_normalised.pth, MS-COCO (or any content folder) and WikiArt.
"""

from __future__ import annotations

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # Data: a folder (read recursively) or tfds:NAME[/CONFIG][:SPLIT].
  c.content = "tfds:coco/2017"
  c.style = "data/wikiart"
  c.tfds_data_dir = ""  # empty: tfds' default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.load_size = 512  # shorter side after resizing, aspect ratio kept
  c.crop_size = 256
  c.batch_size = 8  # global, split over every device
  c.shuffle_buffer = 1024  # tfds inputs only: examples shuffled in memory per epoch
  # Model.
  c.model = "adain"  # or "microast" (configs/microast.py)
  c.vgg = "checkpoints/vgg_normalised.pth"  # .pth, .t7 or .npz; "random" only for smoke tests
  c.init_decoder = ""  # optional decoder weights to start from instead of a random init
  c.init_weights = ""  # MicroAST: a folder of its four files or a training workdir to start from
  c.fusion = "adain"  # or "concat": Enc-Concat-Dec (configs/ablations/concat.py)
  c.decoder_norm = "none"  # or "batch" / "instance" after every decoder conv but the last
  c.style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
  c.alpha = 1.0  # content-style trade-off the decoder is trained at
  c.bf16 = False  # bfloat16 compute (accelerators); parameters and losses stay float32
  # Optimisation.
  c.max_steps = 160_000
  c.lr = 1e-4
  c.lr_decay = 5e-5  # lr / (1 + lr_decay * step)
  c.content_weight = 1.0
  c.style_weight = 10.0
  c.contrastive_weight = 3.0  # MicroAST's style signal contrastive loss (unused by AdaIN)
  c.seed = 0
  # Reporting and checkpoints.
  c.log_every = 50
  c.sample_every = 1000
  c.save_every = 10_000
  c.keep_checkpoints = 3
  return c
