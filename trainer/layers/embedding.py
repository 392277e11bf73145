"""Field embeddings: every feature of a spec as one vector of a common width.

Models that treat the fields as a sequence (RE-SORT's retention streams, Transformers over
fields) need a [batch, fields, dim] tensor. :class:`FieldEmbedding` builds it from the
transformed features (``<name>_xf``) of a :class:`transform.feature_spec.FeatureSpec`:

* categorical: an ``Embedding`` lookup of the id (hashed fields included);
* sequence: the masked mean of its token embeddings (0 is padding);
* numeric: ``x * v_f + u_f``, a learned direction and offset per field, so the z-scored
  value sets the vector's position along the field's own axis.

Fields come in the spec's order: categorical, numeric, sequence.
"""

from __future__ import annotations

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from typing import Dict, List  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from transform import feature_spec as fs  # noqa: E402
from transform.preprocessing import transformed_name  # noqa: E402


class MaskedMeanPooling(keras.layers.Layer):
  """Mean of a sequence's embeddings over its non-padding positions (zeros if empty)."""

  def call(self, inputs, mask=None):
    if mask is None:
      return tf.reduce_mean(inputs, axis=1)
    m = tf.cast(mask, inputs.dtype)[:, :, None]
    return tf.reduce_sum(inputs * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)

  def compute_mask(self, inputs, mask=None):
    return None


class FieldEmbedding(keras.layers.Layer):
  """Maps ``{<feature>_xf: tensor}`` to [batch, num_fields, dim].

  Args:
    spec: the feature spec (its dict form is what ``get_config`` stores).
    cardinalities: ids per categorical and sequence feature, OOV (and padding) included.
    dim: the common width.
    l2: L2 penalty on the embedding tables.
  """

  def __init__(self, spec: Dict, cardinalities: Dict[str, int], dim: int = 16,
               l2: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.spec_dict = spec
    self.cardinalities = dict(cardinalities)
    self.dim = dim
    self.l2 = l2
    self._spec = fs.from_dict(spec)

  @property
  def field_names(self) -> List[str]:
    s = self._spec
    return ([f.name for f in s.categorical] + [f.name for f in s.numeric]
            + [f.name for f in s.sequence])

  def build(self, input_shape):
    reg = keras.regularizers.l2(self.l2) if self.l2 else None
    self.tables = {}
    for f in self._spec.categorical + self._spec.sequence:
      self.tables[f.name] = keras.layers.Embedding(
          self.cardinalities[f.name], self.dim, embeddings_regularizer=reg,
          mask_zero=isinstance(f, fs.SequenceFeature), name=f'emb_{f.name}')
    self.pool = MaskedMeanPooling()
    n_numeric = len(self._spec.numeric)
    if n_numeric:
      self.numeric_direction = self.add_weight(
          'numeric_direction', shape=(n_numeric, self.dim),
          initializer=keras.initializers.RandomNormal(stddev=0.05), regularizer=reg)
      self.numeric_offset = self.add_weight('numeric_offset', shape=(n_numeric, self.dim),
                                            initializer='zeros')
    super().build(input_shape)

  def call(self, inputs):
    fields = []
    for f in self._spec.categorical:
      fields.append(self.tables[f.name](inputs[transformed_name(f.name)]))
    if self._spec.numeric:
      x = tf.stack([tf.cast(inputs[transformed_name(f.name)], self.compute_dtype)
                    for f in self._spec.numeric], axis=1)                # [b, n]
      numeric = x[:, :, None] * self.numeric_direction[None] + self.numeric_offset[None]
      fields.extend(tf.unstack(numeric, axis=1))
    for f in self._spec.sequence:
      ids = inputs[transformed_name(f.name)]
      fields.append(self.pool(self.tables[f.name](ids), mask=ids > 0))
    return tf.stack(fields, axis=1)

  def get_config(self):
    config = super().get_config()
    config.update(spec=self.spec_dict, cardinalities=self.cardinalities, dim=self.dim,
                  l2=self.l2)
    return config
