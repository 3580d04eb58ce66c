"""Media I/O: reading and writing images (and, as they come, other media) as float32 HWC arrays."""
