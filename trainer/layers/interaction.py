"""Explicit feature-interaction layers over field embeddings [batch, fields, dim].

* :class:`FactorizationMachine`: the FM's pairwise term ``sum_{i<j} <e_i, e_j>``, computed
  in O(F d) as ``0.5 * sum_d ((sum_i e_i)^2 - sum_i e_i^2)`` (DeepFM's FM component).
* :class:`SelfAttentionInteraction`: one AutoInt interacting layer: multi-head
  self-attention across the fields, a residual projection and a ReLU.
* DCN-v2's cross layer is not here: the models use ``tfrs.layers.dcn.Cross``.

TensorFlow Recommenders has the cross layer but neither of these, hence this module.
"""

from __future__ import annotations



import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class FactorizationMachine(keras.layers.Layer):
  """[batch, fields, dim] -> [batch, 1], the sum of all pairwise inner products."""

  def call(self, fields):
    square_of_sum = tf.square(tf.reduce_sum(fields, axis=1))
    sum_of_squares = tf.reduce_sum(tf.square(fields), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_squares, axis=1, keepdims=True)


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class SelfAttentionInteraction(keras.layers.Layer):
  """AutoInt's interacting layer (Song et al., 2019): ``ReLU(MHA(E) + E W_res)``.

  Args:
    num_heads: attention heads.
    head_dim: width of each head; the output width is ``num_heads * head_dim``.
    dropout: attention dropout.
  """

  def __init__(self, num_heads: int = 2, head_dim: int = 16, dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.head_dim = head_dim
    self.dropout = dropout

  def build(self, input_shape):
    width = self.num_heads * self.head_dim
    self.mha = keras.layers.MultiHeadAttention(self.num_heads, self.head_dim,
                                               output_shape=width, dropout=self.dropout,
                                               name='mha')
    self.residual = keras.layers.Dense(width, use_bias=False, name='residual')
    super().build(input_shape)

  def call(self, fields, training=None):
    return tf.nn.relu(self.mha(fields, fields, training=training) + self.residual(fields))

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, head_dim=self.head_dim, dropout=self.dropout)
    return config
