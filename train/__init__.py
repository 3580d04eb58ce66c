"""Training the AdaIN decoder (the paper's recipe): `python -m train --workdir DIR --config ...`.

Depends on adain; adain never imports this package, so stylizing needs no TensorFlow or optax.
"""
