"""Reusable tf_keras layers of the model zoo (one concept per module).

Every layer registers itself as a Keras serializable under :data:`SERIALIZABLE_PACKAGE`, so
that a model saved in Keras' format loads back without ``custom_objects``
(tests/trainer/layers/test_layers.py saves and loads each one).
"""

SERIALIZABLE_PACKAGE = 'ctr'
