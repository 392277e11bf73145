"""A Transformer encoder block over a set of fields (pre-layer-norm).

    h = x + Dropout(MHA(LN(x)))
    y = h + Dropout(FFN(LN(h)))          FFN = Dense(m d, gelu) -> Dense(d)

:class:`FieldTransformer` stacks ``num_layers`` blocks after adding a learned embedding of
each field's identity, so attention can tell the fields apart, and ends with a LayerNorm
per field (``final_norm``, as pre-LN encoders do). That norm rescales every field to unit
size, which undoes the L2 prior's shrinkage of rare ids towards zero for whatever reads
the output; ``final_norm=False`` leaves the residual stream as it is. tf_keras has no
encoder block (KerasNLP's needs Keras 3), hence this small one on Keras'
``MultiHeadAttention``.
"""

from __future__ import annotations



import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class TransformerBlock(keras.layers.Layer):
  """``[batch, n, d] -> [batch, n, d]``; ``d`` must be divisible by ``num_heads``.

  ``call(x, key_mask=None, first_only=False)``: ``key_mask`` [batch, n] (bool) hides
  positions from attention; ``first_only`` computes the first position's output alone
  ([batch, 1, d]), for target attention.
  """

  def __init__(self, num_heads: int = 4, ff_multiplier: int = 2, dropout: float = 0.0,
               **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.ff_multiplier = ff_multiplier
    self.dropout = dropout

  def build(self, input_shape):
    d = int(input_shape[-1])
    if d % self.num_heads:
      raise ValueError(f'width {d} is not divisible by num_heads={self.num_heads}')
    self.mha = keras.layers.MultiHeadAttention(self.num_heads, d // self.num_heads,
                                               dropout=self.dropout, name='mha')
    self.norm1 = keras.layers.LayerNormalization(name='norm1')
    self.norm2 = keras.layers.LayerNormalization(name='norm2')
    self.ff1 = keras.layers.Dense(self.ff_multiplier * d, activation='gelu', name='ff1')
    self.ff2 = keras.layers.Dense(d, name='ff2')
    self.drop = keras.layers.Dropout(self.dropout)
    super().build(input_shape)

  def call(self, x, key_mask=None, first_only=False, training=None):
    y = self.norm1(x)
    query, q = (x[:, :1], y[:, :1]) if first_only else (x, y)
    mask = None if key_mask is None else tf.cast(key_mask, tf.bool)[:, None, :]
    h = query + self.drop(self.mha(q, y, attention_mask=mask, training=training),
                          training=training)
    return h + self.drop(self.ff2(self.ff1(self.norm2(h))), training=training)

  def get_config(self):
    return {**super().get_config(), 'num_heads': self.num_heads,
            'ff_multiplier': self.ff_multiplier, 'dropout': self.dropout}


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class FieldTransformer(keras.layers.Layer):
  """Field-identity embeddings, then ``num_layers`` :class:`TransformerBlock` s, then a
  LayerNorm per field where ``final_norm``."""

  def __init__(self, num_layers: int = 2, num_heads: int = 4, ff_multiplier: int = 2,
               dropout: float = 0.0, final_norm: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.num_layers = num_layers
    self.num_heads = num_heads
    self.ff_multiplier = ff_multiplier
    self.dropout = dropout
    self.final_norm = final_norm

  def build(self, input_shape):
    n, d = int(input_shape[1]), int(input_shape[2])
    self.field_ids = self.add_weight('field_embedding', shape=(n, d),
                                     initializer=keras.initializers.RandomNormal(stddev=0.02))
    self.blocks = [TransformerBlock(self.num_heads, self.ff_multiplier, self.dropout,
                                    name=f'block_{i}') for i in range(self.num_layers)]
    self.norm = (keras.layers.LayerNormalization(name='final_norm') if self.final_norm
                 else None)
    super().build(input_shape)

  def call(self, x, training=None):
    x = x + tf.cast(self.field_ids[None], x.dtype)
    for block in self.blocks:
      x = block(x, training=training)
    return x if self.norm is None else self.norm(x)

  def get_config(self):
    return {**super().get_config(), 'num_layers': self.num_layers,
            'num_heads': self.num_heads, 'ff_multiplier': self.ff_multiplier,
            'dropout': self.dropout, 'final_norm': self.final_norm}
