"""A tiny run on procedural images the pipeline draws itself, with a random (He-init) VGG:
checks the whole loop (data, jit, metrics, samples, checkpoints, export) on a CPU.

Command: `make train-smoke [MODEL=microast]`, or
  python -m train --workdir workdir/smoke --config train/configs/smoke.py[:microast]

Expected: under 2 minutes on 2 CPU cores (about half of it compiling): 30 steps of batch 2 on
32 px crops; metrics.jsonl, TensorBoard events, sample grids at steps 15 and 30, checkpoints at
steps 15 and 30 and WORKDIR/decoder.npz. The random VGG makes the results useless for style
transfer: this config tests plumbing. Running it again finds step 30 and exits.

MicroAST's (`:microast`, about 90 s) learns from scratch, visibly: 120 steps of batch 4 at lr 1e-3
(the recipe's 1e-4 barely moves a fresh network in a smoke run's steps), the loss (means of 20
steps) falling from about 6.8 to 5.2 (its style loss from 0.88 to 0.37); grids and checkpoints at 60 and 120, and
the four WORKDIR/microast_*.npz, which `python -m adain.stylize --model microast --weights
WORKDIR` reads.
"""

from __future__ import annotations

from train.configs import default, microast


def get_config(model: str = "adain"):
  c = (microast if model == "microast" else default).get_config()
  c.content = "synthetic:content"
  c.style = "synthetic:style"
  c.vgg = "random"
  c.load_size = 40
  c.crop_size = 32
  c.batch_size = 2
  c.max_steps = 30
  c.log_every = 5
  c.sample_every = 15
  c.save_every = 15
  if model == "microast":
    c.update(lr=1e-3, batch_size=4, max_steps=120, log_every=10, sample_every=60, save_every=60)
  return c
