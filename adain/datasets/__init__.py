"""Engines of python -m adain.stylize_dataset beyond one host (ray_engine: Ray Data)."""
