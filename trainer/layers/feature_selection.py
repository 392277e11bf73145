"""FinalMLP's feature selection and interaction aggregation (Mao et al., 2023), used by RE-SORT.

* :class:`FeatureSelection` makes two gated *views* of the flattened field embeddings:
  ``view_i = e * 2 sigmoid(MLP_i(context_i))``, where the context is the embeddings of
  chosen fields (or, with none, a learned vector). Gates lie in (0, 2) and start near 1,
  so each stream can amplify or silence fields.
* :class:`InteractionAggregation` fuses two stream outputs ``x`` and ``y`` into a logit
  with a multi-head bilinear term: ``w_x.x + w_y.y + sum_h x_h^T W_h y_h + b``, where the
  ``h``-th head takes the ``h``-th chunk of each input.

Written here because neither tf_keras nor TensorFlow Recommenders provides them.
"""

from __future__ import annotations



from typing import Sequence

import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class FeatureSelection(keras.layers.Layer):
  """Two gated views of ``embeddings`` [batch, width].

  Args:
    hidden_units: the gate MLPs' hidden widths (the seed uses [64]).
    dropout: inside the gate MLPs.

  ``call(embeddings, contexts=(ctx1, ctx2))``: each context is a [batch, c] tensor, or
  None for a learned, input-independent context. Returns ``(view1, view2)``.
  """

  def __init__(self, hidden_units: Sequence[int] = (64,), dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.hidden_units = list(hidden_units)
    self.dropout = dropout

  def build(self, input_shape):
    width = int(input_shape[-1])
    self.bias_context = [self.add_weight(f'context_{i}', shape=(1, width),
                                         initializer='zeros') for i in (1, 2)]
    self.gates = []
    for i in (1, 2):
      layers = []
      for j, units in enumerate(self.hidden_units):
        layers.append(keras.layers.Dense(units, activation='relu', name=f'gate{i}_{j}'))
        if self.dropout:
          layers.append(keras.layers.Dropout(self.dropout))
      # Zero-initialised output: gates start at exactly 2 sigmoid(0) = 1.
      layers.append(keras.layers.Dense(width, kernel_initializer='zeros',
                                       name=f'gate{i}_out'))
      self.gates.append(keras.Sequential(layers, name=f'gate{i}'))
    super().build(input_shape)

  def gate_values(self, embeddings, contexts=(None, None), training=None):
    """The two gates, each [batch, width] in (0, 2)."""
    out = []
    for i, ctx in enumerate(contexts):
      if ctx is None:
        ctx = tf.tile(self.bias_context[i], [tf.shape(embeddings)[0], 1])
      out.append(2.0 * tf.sigmoid(self.gates[i](ctx, training=training)))
    return out

  def call(self, embeddings, contexts=(None, None), training=None):
    g1, g2 = self.gate_values(embeddings, contexts, training)
    return embeddings * g1, embeddings * g2

  def get_config(self):
    config = super().get_config()
    config.update(hidden_units=self.hidden_units, dropout=self.dropout)
    return config


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class InteractionAggregation(keras.layers.Layer):
  """Multi-head bilinear fusion of two streams into one logit [batch, 1].

  Args:
    num_heads: both inputs' widths must divide by it.
    bilinear: False leaves the linear terms alone, ``w_x.x + w_y.y + b`` (an ablation:
      what the streams' pairwise product adds).
  """

  def __init__(self, num_heads: int = 1, bilinear: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.bilinear_term = bilinear

  def build(self, input_shape):
    x_shape, y_shape = input_shape
    dx, dy = int(x_shape[-1]), int(y_shape[-1])
    if dx % self.num_heads or dy % self.num_heads:
      raise ValueError(f'widths {dx} and {dy} must divide by num_heads={self.num_heads}')
    self.dx, self.dy = dx // self.num_heads, dy // self.num_heads
    self.w_x = keras.layers.Dense(1, name='w_x')
    self.w_y = keras.layers.Dense(1, use_bias=False, name='w_y')
    self.w_x.build(x_shape)
    self.w_y.build(y_shape)
    # Zero start: the layer begins as a linear model of the two streams (the gradient of
    # the bilinear term, x y^T, is non-zero). A Glorot start sums dx*dy random products
    # into the logit and makes the first epochs overconfident at CTR base rates.
    self.bilinear = (self.add_weight('bilinear', shape=(self.num_heads, self.dx, self.dy),
                                     initializer='zeros') if self.bilinear_term else None)
    super().build(input_shape)

  def call(self, inputs):
    x, y = inputs
    linear = self.w_x(x) + self.w_y(y)
    if self.bilinear is None:
      return linear
    xh = tf.reshape(x, [-1, self.num_heads, self.dx])
    yh = tf.reshape(y, [-1, self.num_heads, self.dy])
    return linear + tf.einsum('bhi,hij,bhj->b', xh, self.bilinear, yh)[:, None]

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, bilinear=self.bilinear_term)
    return config


def count_dense(widths: Sequence[int], bias: bool = True) -> int:
  """Parameters of a chain of Dense layers ``widths[0] -> widths[1] -> ...``."""
  return sum(a * b + (b if bias else 0) for a, b in zip(widths, widths[1:]))

