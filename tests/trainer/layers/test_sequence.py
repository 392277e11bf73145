"""trainer/layers/sequence.py: target attention over a user's sequence."""
import numpy as np
import tensorflow as tf

from trainer.layers.sequence import TargetAttention


def test_target_attention_ignores_masked_positions():
  att = TargetAttention(num_heads=2)
  seq = tf.random.normal([2, 5, 8])
  mask = tf.constant([[True, True, False, False, False]] * 2)
  target = tf.random.normal([2, 8])
  out = att(seq, mask, target)
  noisy = tf.concat([seq[:, :2], 100 * tf.random.normal([2, 3, 8])], axis=1)
  np.testing.assert_allclose(out, att(noisy, mask, target), atol=1e-5)
  assert out.shape == (2, 8)
