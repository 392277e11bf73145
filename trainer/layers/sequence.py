"""Target attention over a behaviour sequence (Behavior Sequence Transformer, Chen et al., 2019).

:class:`TargetAttention` appends the candidate (the target item) to the user's history,
adds learned position embeddings and runs one Transformer block over the result; the
output at the candidate's position is the history as seen from the candidate. Padding
positions are masked out of the attention keys, so an empty history gives the
candidate's own transformed embedding.

Any model reads a sequence through it by setting ``sequence_encoder='attention'`` on
:class:`trainer.layers.embedding.FieldEmbedding`, where the spec names the sequence's
``target`` field. Written here because TensorFlow Recommenders has no target-attention
layer; it is one :class:`trainer.layers.transformer.TransformerBlock` (pre-layer-norm)
with the candidate as the only query.
"""

from __future__ import annotations



import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE
from trainer.layers.transformer import TransformerBlock


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class TargetAttention(keras.layers.Layer):
  """``call(sequence [b, L, d], mask [b, L] bool, target [b, d]) -> [b, d]``.

  Args:
    num_heads: attention heads (``d`` must be divisible by it).
    ff_multiplier: width of the feed-forward block, in multiples of ``d``.
    dropout: on the attention and feed-forward outputs.
  """

  def __init__(self, num_heads: int = 2, ff_multiplier: int = 2, dropout: float = 0.0,
               **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.ff_multiplier = ff_multiplier
    self.dropout = dropout

  def build(self, input_shape):
    length, d = int(input_shape[1]), int(input_shape[2])
    self.positions = self.add_weight('positions', shape=(length + 1, d),
                                     initializer=keras.initializers.RandomNormal(stddev=0.02))
    self.block = TransformerBlock(self.num_heads, self.ff_multiplier, self.dropout,
                                  name='block')
    super().build(input_shape)

  def call(self, sequence, mask, target, training=None):
    x = tf.concat([target[:, None, :], sequence], axis=1)
    x = x + tf.cast(self.positions[None], x.dtype)
    keys = tf.concat([tf.ones_like(mask[:, :1], tf.bool), tf.cast(mask, tf.bool)], axis=1)
    # Only the candidate's position is read out, so it is the only query.
    return self.block(x, key_mask=keys, first_only=True, training=training)[:, 0]

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, ff_multiplier=self.ff_multiplier,
                  dropout=self.dropout)
    return config
