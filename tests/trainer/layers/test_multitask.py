"""trainer/layers/multitask.py: ESMM's CTCVR logit, the mixture-of-experts gates and PLE."""
import numpy as np
import tensorflow as tf

from trainer.layers import multitask


def test_esmm_ctcvr_logit_is_exact_and_stable():
  a = tf.constant([-30.0, -3.0, 0.0, 2.0, 40.0])
  b = tf.constant([-2.0, 1.0, 0.0, -40.0, 40.0])
  z = multitask.esmm_ctcvr_logit(a, b).numpy()
  assert np.all(np.isfinite(z))
  p = tf.sigmoid(a).numpy().astype(np.float64) * tf.sigmoid(b).numpy()
  np.testing.assert_allclose(1 / (1 + np.exp(-z.astype(np.float64))), p, rtol=1e-5)


def test_moe_gates_are_distributions():
  x = tf.random.normal([8, 12])
  moe = multitask.MixtureOfExperts(2, num_experts=3, expert_units=(5,))
  outs = moe(x)
  assert len(outs) == 2 and outs[0].shape == (8, 5)
  for w in moe.gate_weights(x):
    assert w.shape == (8, 3)
    np.testing.assert_allclose(tf.reduce_sum(w, 1).numpy(), 1.0, rtol=1e-5)
  ple = multitask.ProgressiveLayeredExtraction(3, 2, 1, (6,), levels=2)
  assert [o.shape for o in ple(x)] == [(8, 6)] * 3
