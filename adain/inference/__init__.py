"""Inference: the Stylizer (weights held once, images in, stylized arrays out), its saved
compiled programs, tiling for images beyond memory, the memory budget and colour preservation."""
