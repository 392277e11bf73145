"""What every model reads: the Keras inputs of a spec's transformed features, and the
number of ids of each categorical and sequence feature in the Transform output.

The architectures themselves are in :mod:`trainer.models`.
"""

from __future__ import annotations



from typing import Dict

import tensorflow as tf
import tf_keras as keras

from transform import feature_spec as fs
from transform.preprocessing import transformed_name, vocabulary_name


def cardinalities(spec: fs.FeatureSpec, tf_transform_output) -> Dict[str, int]:
  """Number of ids of each categorical and sequence feature, OOV included.

  Sequence ids are shifted by one (0 is padding), hence the + 1.
  """
  out = {}
  for f in spec.categorical:
    out[f.name] = f.hash_buckets or (
        tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name)) + f.oov_buckets)
  for f in spec.sequence:
    if f.target:  # tokens are ids of the target field
      out[f.name] = out[f.target] + 1
    else:
      out[f.name] = (tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name))
                     + f.oov_buckets + 1)
  return out


def build_inputs(spec: fs.FeatureSpec) -> Dict[str, keras.Input]:
  inputs = {}
  for f in spec.categorical:
    name = transformed_name(f.name)
    inputs[name] = keras.Input(shape=(), name=name, dtype=tf.int64)
  for f in spec.numeric:
    name = transformed_name(f.name)
    inputs[name] = keras.Input(shape=(), name=name, dtype=tf.float32)
  for f in spec.sequence:
    name = transformed_name(f.name)
    inputs[name] = keras.Input(shape=(f.max_len,), name=name, dtype=tf.int64)
  return inputs
