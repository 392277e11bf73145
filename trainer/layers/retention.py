"""Multi-scale retention (MSR), the building block of RE-SORT's interaction streams.

Retention (Sun et al., 2023, "Retentive Network") replaces attention's softmax with an
exponential decay. For one head with decay ``gamma`` over a sequence ``x_1..x_N``::

    q_n = xpos(x_n W_Q, n),  k_m = xpos(x_m W_K, m, downscale),  v_m = x_m W_V
    o_n = sum_{m <= n} gamma^(n - m) (q_n . k_m) v_m                    (parallel form)
    S_n = gamma S_{n-1} + k_n^T v_n,   o_n = q_n S_n                     (recurrent form)

The two forms are equal; the parallel one trains on whole sequences at once, the
recurrent one needs O(1) state per step at inference. In RE-SORT the sequence axis is the
feature fields (in the feature spec's order), not time.

A :class:`MultiScaleRetention` layer (pre-norm residual block)::

    h = LayerNorm(x)
    Y = GroupNorm_heads(concat_h Retention_h(h))        # one decay per head
    out = x + Dropout((swish(h W_G) * Y) W_O)

Decays follow RetNet's schedule ``gamma_h = 1 - 2^(-5 - h)`` (:func:`retnet_gammas`), so
each head looks at a different range of fields ("multi-scale"). XPOS (Sun et al., 2022,
"A Length-Extrapolatable Transformer") rotates queries and keys by position and scales
them by ``zeta_i^(n / scale_base)`` (keys by the inverse), so ``q_n . k_m`` depends only on
``n - m``. There is no softmax, and no score normalisation: GroupNorm, applied per head
and position, makes the output invariant to such per-row scales.

Written here because neither tf_keras nor TensorFlow Recommenders has a retention layer.
"""

from __future__ import annotations



from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE


def retnet_gammas(num_heads: int) -> np.ndarray:
  """RetNet's per-head decays: ``1 - 2^(-5 - h)`` for ``h = 0 .. num_heads - 1``."""
  return 1.0 - 2.0 ** (-5.0 - np.arange(num_heads, dtype=np.float64))


def xpos_tables(positions: tf.Tensor, head_dim: int, num_heads: int = 1,
                scale_base: float = 512.0, downscale: bool = False,
                dtype=tf.float32) -> Tuple[tf.Tensor, tf.Tensor]:
  """XPOS as two tables ``C, S`` of shape [N, num_heads * head_dim]: see :func:`xpos`.

  Channel ``c`` belongs to head ``c // head_dim`` and to pair ``i = (c % head_dim) // 2``;
  both channels of a pair carry that pair's ``cos`` (in C) and ``sin`` (in S), scaled.
  """
  if head_dim % 2:
    raise ValueError(f'XPOS needs an even head dimension, got {head_dim}')
  half = head_dim // 2
  pos = tf.cast(positions, dtype)[:, None]                                # [N, 1]
  i = tf.range(half, dtype=dtype)[None, :]                                 # [1, d/2]
  zeta = (2.0 * i + 0.4 * head_dim) / (1.4 * head_dim)
  scale = zeta ** (pos / scale_base)
  if downscale:
    scale = 1.0 / scale
  angle = pos * (10000.0 ** (-2.0 * i / head_dim))
  cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale                 # [N, d/2]
  tile = lambda t: tf.tile(tf.repeat(t, 2, axis=-1), [1, num_heads])     # noqa: E731
  return tile(cos), tile(sin)


def pair_rotation(width: int, dtype=tf.float32) -> tf.Tensor:
  """The [width, width] matrix ``P`` with ``(x P)_{2i} = -x_{2i+1}``, ``(x P)_{2i+1} =
  x_{2i}``: a quarter turn of every channel pair."""
  p = np.zeros([width, width], np.float64)
  p[1::2, 0::2] -= np.eye(width // 2)
  p[0::2, 1::2] += np.eye(width // 2)
  return tf.constant(p, dtype)


def rotate(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor) -> tf.Tensor:
  """``x C + (x P) S`` over the last axis of ``x`` [..., N, width].

  Why a matrix product: the same rotation written with strided slices (``x[..., 0::2]``)
  and a stack costs about as much as the rest of a retention block together on CPU
  (docs/BENCHMARKS.md, "Training step time by part"); one small matmul does not.
  """
  width = x.shape[-1]
  turned = tf.reshape(tf.matmul(tf.reshape(x, [-1, width]), pair_rotation(width, x.dtype)),
                      tf.shape(x))
  return x * cos + turned * sin


def xpos(x: tf.Tensor, positions: tf.Tensor, scale_base: float = 512.0,
         downscale: bool = False) -> tf.Tensor:
  """Applies XPOS to ``x`` of shape [..., N, d] (d even) at integer ``positions`` [N].

  Channel pair ``(2i, 2i+1)`` at position ``n`` is rotated by ``n * theta_i`` with
  ``theta_i = 10000^(-2i/d)`` and scaled by ``zeta_i^(n / scale_base)``, where
  ``zeta_i = (2i + 0.4 d) / (1.4 d)``; ``downscale`` (for keys) uses ``zeta_i^(-n/...)``.
  """
  cos, sin = xpos_tables(positions, x.shape[-1], 1, scale_base, downscale, x.dtype)
  return rotate(x, cos, sin)


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class MultiScaleRetention(keras.layers.Layer):
  """A residual multi-scale retention block over a [batch, N, dim] sequence.

  Args:
    num_heads: retention heads; ``dim`` (the input width) must divide by it and each
      head's width must be even (XPOS rotates channel pairs).
    gammas: per-head decays; default :func:`retnet_gammas`.
    dropout: on the block's output before the residual sum.
    scale_base: XPOS scale base.
    use_residual: add the input to the output.

  ``call(x)`` uses the parallel form; :meth:`recurrent` computes the same output one
  position at a time from an O(1) state.
  """

  def __init__(self, num_heads: int = 2, gammas: Optional[Sequence[float]] = None,
               dropout: float = 0.0, scale_base: float = 512.0, use_residual: bool = True,
               **kwargs):
    super().__init__(**kwargs)
    self.num_heads = num_heads
    self.gammas = None if gammas is None else [float(g) for g in gammas]
    self.dropout = dropout
    self.scale_base = scale_base
    self.use_residual = use_residual
    if self.gammas is not None and len(self.gammas) != num_heads:
      raise ValueError(f'{len(self.gammas)} gammas for {num_heads} heads')

  def build(self, input_shape):
    dim = int(input_shape[-1])
    if dim % self.num_heads or (dim // self.num_heads) % 2:
      raise ValueError(f'dim {dim} must split into {self.num_heads} heads of even width')
    self.dim = dim
    self.head_dim = dim // self.num_heads
    dense = lambda name: keras.layers.Dense(dim, use_bias=False, name=name)  # noqa: E731
    self.q_proj, self.k_proj, self.v_proj = dense('q'), dense('k'), dense('v')
    self.g_proj, self.o_proj = dense('gate'), dense('out')
    for layer in (self.q_proj, self.k_proj, self.v_proj, self.g_proj, self.o_proj):
      layer.build(input_shape)
    self.pre_norm = keras.layers.LayerNormalization(epsilon=1e-5, name='pre_norm')
    self.pre_norm.build(input_shape)
    self.group_norm = keras.layers.GroupNormalization(groups=self.num_heads, epsilon=1e-5,
                                                      name='group_norm')
    self.group_norm.build(input_shape)
    self.drop = keras.layers.Dropout(self.dropout)
    gammas = self.gammas if self.gammas is not None else retnet_gammas(self.num_heads)
    self.log_gamma = tf.constant(np.log(gammas), self.compute_dtype)        # [H]
    super().build(input_shape)

  def _qkv(self, h):
    """Heads of q, k, v: [batch, H, N, head_dim], with XPOS on q and k.

    XPOS rotates each head's channel pairs, so it is applied before the split into heads
    with tables tiled over the heads: the same values as :func:`xpos` per head.
    """
    n = tf.shape(h)[1]
    positions = tf.range(n)

    def heads(t):
      t = tf.reshape(t, [tf.shape(t)[0], n, self.num_heads, self.head_dim])
      return tf.transpose(t, [0, 2, 1, 3])

    def tables(downscale):
      return xpos_tables(positions, self.head_dim, self.num_heads, self.scale_base,
                         downscale, h.dtype)
    q = rotate(self.q_proj(h), *tables(False)) * self.head_dim ** -0.5
    k = rotate(self.k_proj(h), *tables(True))
    return heads(q), heads(k), heads(self.v_proj(h))

  def _finish(self, x, h, o, training):
    """GroupNorm, swish gate, output projection, dropout and residual."""
    o = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [tf.shape(o)[0], tf.shape(o)[2], self.dim])
    y = self.group_norm(o)
    y = self.o_proj(tf.nn.swish(self.g_proj(h)) * y)
    y = self.drop(y, training=training)
    return x + y if self.use_residual else y

  def decay_mask(self, n) -> tf.Tensor:
    """D[h, i, j] = gamma_h^(i - j) for i >= j, else 0: shape [H, N, N]."""
    idx = tf.range(n)
    diff = tf.cast(idx[:, None] - idx[None, :], self.compute_dtype)
    causal = diff >= 0
    decay = tf.exp(self.log_gamma[:, None, None] * tf.maximum(diff, 0.0)[None])
    return tf.where(causal[None], decay, tf.zeros_like(decay))

  def call(self, x, training=None):
    h = self.pre_norm(x)
    q, k, v = self._qkv(h)
    scores = tf.matmul(q, k, transpose_b=True) * self.decay_mask(tf.shape(x)[1])[None]
    return self._finish(x, h, tf.matmul(scores, v), training)

  def recurrent(self, x, training=None):
    """The same output as ``call``, by the recurrence over positions (inference)."""
    h = self.pre_norm(x)
    q, k, v = self._qkv(h)
    gamma = tf.exp(self.log_gamma)[None, :, None, None]                     # [1, H, 1, 1]
    state = tf.zeros([tf.shape(x)[0], self.num_heads, self.head_dim, self.head_dim],
                     x.dtype)
    outputs = []
    for t in range(x.shape[1]):
      state = gamma * state + tf.einsum('bhd,bhe->bhde', k[:, :, t], v[:, :, t])
      outputs.append(tf.einsum('bhd,bhde->bhe', q[:, :, t], state))
    return self._finish(x, h, tf.stack(outputs, axis=2), training)

  def get_config(self):
    config = super().get_config()
    config.update(num_heads=self.num_heads, gammas=self.gammas, dropout=self.dropout,
                  scale_base=self.scale_base, use_residual=self.use_residual)
    return config
