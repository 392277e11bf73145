"""Multi-scale retention: decays, XPOS, parallel == recurrent, causality, parameters."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer.layers import retention


def test_retnet_gammas():
  np.testing.assert_allclose(retention.retnet_gammas(3),
                             [1 - 2 ** -5, 1 - 2 ** -6, 1 - 2 ** -7])


def test_xpos_is_relative():
  """q_n . k_m after XPOS depends only on n - m."""
  rng = np.random.default_rng(0)
  q0 = tf.constant(rng.normal(size=(1, 8)), tf.float64)
  k0 = tf.constant(rng.normal(size=(1, 8)), tf.float64)

  def score(n, m):
    q = retention.xpos(q0, tf.constant([n]))
    k = retention.xpos(k0, tf.constant([m]), downscale=True)
    return float(tf.reduce_sum(q * k))
  assert score(5, 2) == pytest.approx(score(13, 10), rel=1e-9)
  assert score(5, 2) != pytest.approx(score(5, 3), rel=1e-3)
  np.testing.assert_allclose(retention.xpos(q0, tf.constant([0])).numpy(), q0.numpy())
  with pytest.raises(ValueError, match='even'):
    retention.xpos(tf.zeros([1, 3]), tf.constant([0]))


def _xpos_by_formula(x, positions, scale_base=512.0, downscale=False):
  """XPOS written pair by pair, as in the docstring, in numpy (float64)."""
  x = np.asarray(x, np.float64)
  d = x.shape[-1]
  out = np.empty_like(x)
  for n_index, n in enumerate(positions):
    for i in range(d // 2):
      zeta = (2 * i + 0.4 * d) / (1.4 * d)
      scale = zeta ** ((-n if downscale else n) / scale_base)
      theta = n * 10000.0 ** (-2 * i / d)
      a, b = x[..., n_index, 2 * i], x[..., n_index, 2 * i + 1]
      out[..., n_index, 2 * i] = (a * np.cos(theta) - b * np.sin(theta)) * scale
      out[..., n_index, 2 * i + 1] = (b * np.cos(theta) + a * np.sin(theta)) * scale
  return out


@pytest.mark.parametrize('downscale', [False, True])
def test_xpos_matches_the_pairwise_formula(downscale):
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 3, 7, 8))
  got = retention.xpos(tf.constant(x), tf.range(7), scale_base=8.0, downscale=downscale)
  np.testing.assert_allclose(got.numpy(), _xpos_by_formula(x, range(7), 8.0, downscale),
                             rtol=1e-12, atol=1e-12)


def test_heads_get_xpos_of_their_own_channels():
  """The layer rotates q and k before the split into heads, with tables tiled over the
  heads: each head must get XPOS of its own channels, as if applied per head."""
  layer = retention.MultiScaleRetention(num_heads=4, scale_base=16.0)
  h = tf.random.stateless_normal([2, 6, 32], seed=[5, 6])
  layer.build(h.shape)
  q, k, v = layer._qkv(h)

  def per_head(t):
    return np.transpose(t.numpy().reshape(2, 6, 4, 8), (0, 2, 1, 3))
  np.testing.assert_allclose(
      q.numpy(), _xpos_by_formula(per_head(layer.q_proj(h)), range(6), 16.0) * 8 ** -0.5,
      rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      k.numpy(), _xpos_by_formula(per_head(layer.k_proj(h)), range(6), 16.0, True),
      rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(v.numpy(), per_head(layer.v_proj(h)), rtol=1e-6)


@pytest.mark.parametrize('heads,dim,fields', [(2, 32, 5), (4, 16, 9), (1, 8, 1)])
def test_parallel_equals_recurrent(heads, dim, fields):
  layer = retention.MultiScaleRetention(num_heads=heads)
  x = tf.random.stateless_normal([3, fields, dim], seed=[1, heads])
  parallel = layer(x)
  assert parallel.shape == (3, fields, dim)
  np.testing.assert_allclose(layer.recurrent(x).numpy(), parallel.numpy(), atol=1e-5)


def test_causal_over_fields():
  layer = retention.MultiScaleRetention(num_heads=2)
  x = tf.random.stateless_normal([2, 6, 16], seed=[3, 4])
  changed = tf.concat([x[:, :4], x[:, 4:] + 1.0], axis=1)
  a, b = layer(x).numpy(), layer(changed).numpy()
  np.testing.assert_allclose(a[:, :4], b[:, :4], atol=1e-6)  # earlier fields unaffected
  assert not np.allclose(a[:, 4:], b[:, 4:])


def test_decay_mask():
  layer = retention.MultiScaleRetention(num_heads=2, gammas=[0.5, 0.9])
  layer.build((None, 3, 8))
  d = layer.decay_mask(3).numpy()
  np.testing.assert_allclose(d[0], [[1, 0, 0], [0.5, 1, 0], [0.25, 0.5, 1]], rtol=1e-6)
  np.testing.assert_allclose(d[1, 2, 0], 0.81, rtol=1e-6)


def test_parameter_count_and_config():
  dim = 32
  layer = retention.MultiScaleRetention(num_heads=2, dropout=0.1)
  inputs = keras.Input((5, dim))
  model = keras.Model(inputs, layer(inputs))
  # Q, K, V, gate and output projections (no bias), LayerNorm and GroupNorm (scale+shift).
  assert model.count_params() == 5 * dim * dim + 4 * dim
  again = retention.MultiScaleRetention.from_config(layer.get_config())
  assert again.num_heads == 2 and again.dropout == 0.1
  with pytest.raises(ValueError, match='even width'):
    retention.MultiScaleRetention(num_heads=3)(tf.zeros([1, 2, 9]))
  with pytest.raises(ValueError, match='gammas'):
    retention.MultiScaleRetention(num_heads=2, gammas=[0.9])


def test_trains_in_a_model():
  """A retention block learns a field interaction (XOR of two fields' signs)."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4000, 4, 8)).astype(np.float32)
  y = ((x[:, 0, 0] > 0) ^ (x[:, 3, 0] > 0)).astype(np.float32)
  inputs = keras.Input((4, 8))
  h = retention.MultiScaleRetention(num_heads=2)(inputs)
  h = retention.MultiScaleRetention(num_heads=2)(h)
  out = keras.layers.Dense(1, activation='sigmoid')(
      keras.layers.Dense(32, activation='relu')(keras.layers.Flatten()(h)))
  model = keras.Model(inputs, out)
  model.compile(keras.optimizers.Adam(3e-3), 'binary_crossentropy', metrics=['accuracy'])
  model.fit(x, y, epochs=15, batch_size=128, verbose=0)
  assert model.evaluate(x, y, verbose=0)[1] > 0.85
