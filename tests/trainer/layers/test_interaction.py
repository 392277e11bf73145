"""trainer/layers/interaction.py: the factorization machine and the self-attention
interaction."""
import itertools

import numpy as np
import tensorflow as tf

from trainer.layers.interaction import FactorizationMachine, SelfAttentionInteraction
from trainer.layers.transformer import FieldTransformer


def test_factorization_machine_is_the_sum_of_pairwise_products():
  e = tf.random.normal([3, 4, 5])
  brute = sum(tf.reduce_sum(e[:, i] * e[:, j], axis=1)
              for i, j in itertools.combinations(range(4), 2))
  np.testing.assert_allclose(FactorizationMachine()(e)[:, 0], brute, rtol=1e-4, atol=1e-5)


def test_interaction_and_transformer_shapes():
  e = tf.random.normal([3, 4, 8])
  assert SelfAttentionInteraction(2, 6)(e).shape == (3, 4, 12)
  assert FieldTransformer(2, 4)(e).shape == (3, 4, 8)
