"""Pipelines over many inputs: video clips (``video``) and datasets (``datasets``, with its Ray
engine ``ray_engine``), on top of adain.inference's Stylizer."""
