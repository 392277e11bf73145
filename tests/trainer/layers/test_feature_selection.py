"""FinalMLP-style feature selection gates and the bilinear interaction aggregation."""
import numpy as np
import pytest
import tensorflow as tf

from trainer.layers.feature_selection import (FeatureSelection, InteractionAggregation,
                                              count_dense)


def test_gates_start_at_one_and_stay_in_range():
  layer = FeatureSelection(hidden_units=[16])
  emb = tf.random.stateless_normal([4, 10], seed=[0, 1])
  ctx = tf.random.stateless_normal([4, 3], seed=[0, 2])
  v1, v2 = layer(emb, contexts=(ctx, None))
  np.testing.assert_allclose(v1.numpy(), emb.numpy(), atol=1e-6)  # zero-init: gate == 1
  np.testing.assert_allclose(v2.numpy(), emb.numpy(), atol=1e-6)
  # After arbitrary weights, every gate stays strictly inside (0, 2).
  for w in layer.trainable_weights:
    w.assign(tf.random.stateless_normal(w.shape, seed=[5, 6]) * 20.0)
  g1, g2 = layer.gate_values(emb, (ctx, None))
  for g in (g1, g2):
    assert g.shape == (4, 10)
    assert float(tf.reduce_min(g)) >= 0.0 and float(tf.reduce_max(g)) <= 2.0
  assert not np.allclose(g1.numpy(), 1.0)


def test_gate_parameters():
  layer = FeatureSelection(hidden_units=[64])
  layer(tf.zeros([2, 80]), contexts=(tf.zeros([2, 16]), None))
  # Gate 1 reads a 16-wide context, gate 2 its learned 80-wide context.
  expected = count_dense([16, 64, 80]) + count_dense([80, 64, 80]) + 2 * 80
  assert sum(int(np.prod(w.shape)) for w in layer.weights) == expected


def test_interaction_aggregation_matches_formula():
  layer = InteractionAggregation(num_heads=2)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 4)).astype(np.float32)
  y = rng.normal(size=(3, 6)).astype(np.float32)
  out = layer((tf.constant(x), tf.constant(y))).numpy()
  assert out.shape == (3, 1)
  layer.bilinear.assign(tf.random.stateless_normal(layer.bilinear.shape, seed=[1, 2]))
  out = layer((tf.constant(x), tf.constant(y))).numpy()
  wx, bx = [w.numpy() for w in layer.w_x.weights]
  wy = layer.w_y.weights[0].numpy()
  W = layer.bilinear.numpy()
  expected = x @ wx + bx + y @ wy
  for h in range(2):
    expected[:, 0] += np.einsum('bi,ij,bj->b', x[:, 2 * h:2 * h + 2], W[h],
                                y[:, 3 * h:3 * h + 3])
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  assert layer.count_params() == (4 + 1) + 6 + 2 * 2 * 3
  with pytest.raises(ValueError, match='divide'):
    InteractionAggregation(num_heads=4)((tf.zeros([1, 6]), tf.zeros([1, 8])))


def test_interaction_aggregation_without_bilinear_is_linear():
  layer = InteractionAggregation(num_heads=2, bilinear=False)
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3, 4)).astype(np.float32)
  y = rng.normal(size=(3, 6)).astype(np.float32)
  out = layer((tf.constant(x), tf.constant(y))).numpy()
  wx, bx = [w.numpy() for w in layer.w_x.weights]
  wy = layer.w_y.weights[0].numpy()
  np.testing.assert_allclose(out, x @ wx + bx + y @ wy, rtol=1e-5, atol=1e-5)
  assert layer.bilinear is None and layer.count_params() == (4 + 1) + 6
  clone = InteractionAggregation.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
