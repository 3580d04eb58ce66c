"""The networks, one subpackage each: ``adain`` (the paper's), with shared pure functions in
``ops`` and the training losses in ``losses``. See adain.models.interface for what a network
provides."""
