"""trainer/models/deepfm.py: the FM logit is the first-order sum plus the pairwise dot
products of the same field embeddings the deep part reads."""
import itertools

import numpy as np

from trainer import models
from trainer.models import deepfm, heads
from helpers import TINY_CARDS, TINY_SPEC, layer_outputs, tiny_data


def test_fm_logit_is_first_order_plus_pairwise_products_of_the_shared_fields():
  model = models.build('deepfm', TINY_SPEC, TINY_CARDS,
                       deepfm.DeepFmConfig(hidden_units=(16,)), heads.HeadConfig(tasks='primary'))
  feats, _ = tiny_data(64)
  fields, first, fm_logit, flat = layer_outputs(
      model, ['fields', 'first_order_flat', 'fm_logit', 'flat_fields'], feats)
  pairwise = sum((fields[:, i] * fields[:, j]).sum(-1)
                 for i, j in itertools.combinations(range(fields.shape[1]), 2))
  dense = model.core.get_layer('first_order_sum')
  w, b = dense.kernel.numpy(), dense.bias.numpy()
  np.testing.assert_allclose(fm_logit[:, 0], first @ w[:, 0] + b[0] + pairwise,
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(w, 1.0)          # starts as the plain sum of first-order weights
  np.testing.assert_array_equal(flat, fields.reshape(len(flat), -1))   # the deep part's input
  assert first.shape[1] == fields.shape[1]       # one first-order weight per field
