"""trainer/models/dcn_v2.py: every cross layer multiplies by x_0, the structures give the
documented representations, and a bad structure is named."""
import numpy as np
import pytest

from trainer import models
from trainer.models import blocks, dcn_v2, heads
from helpers import TINY_CARDS, TINY_SPEC, layer_outputs, tiny_data


def _build(**kw):
  config = dcn_v2.DcnV2Config(projection_dim=4, hidden_units=(16, 8), embedding_dim=8, **kw)
  return config, models.build('dcn_v2', TINY_SPEC, TINY_CARDS, config,
                              heads.HeadConfig(tasks='primary'))


def test_zero_cross_weights_pass_x0_through_and_the_parallel_rep_is_cross_then_deep():
  config, model = _build(cross_layers=3)
  w = blocks.field_count(TINY_SPEC, config) * 8
  for i in range(3):
    layer = model.core.get_layer(f'cross_{i}')
    layer.set_weights([np.zeros_like(v) for v in layer.get_weights()])
  feats, _ = tiny_data(32)
  x0, rep, deep = layer_outputs(model, ['flat_fields', 'cross_and_deep', 'deep_drop_1'],
                                feats)
  assert rep.shape == (32, w + 8)
  # x_{l+1} = x_0 * (U (V^T x_l) + b) + x_l with U, V, b zero: every layer returns x_0.
  np.testing.assert_allclose(rep[:, :w], x0, rtol=1e-6)
  np.testing.assert_allclose(rep[:, w:], deep, rtol=1e-6)
  # With its weights, the first cross layer is x_0 * (U V^T x_0 + b) + x_0.
  _, fresh = _build(cross_layers=1)
  x0, cross = layer_outputs(fresh, ['flat_fields', 'cross_0'], feats)
  c = fresh.core.get_layer('cross_0')
  # TFRS's Cross: a projection to rank 4 (no bias), then back to x_0's width (biased).
  down, up = c._dense_u.kernel.numpy(), c._dense_v.kernel.numpy()
  assert down.shape == (x0.shape[1], 4)
  bias = c._dense_v.bias.numpy()
  np.testing.assert_allclose(cross, x0 * ((x0 @ down) @ up + bias) + x0, rtol=1e-4, atol=1e-5)


def test_stacked_structure_and_bad_structure():
  _, model = _build(structure='stacked')
  feats, _ = tiny_data(4)
  (rep,) = layer_outputs(model, ['deep_drop_1'], feats)
  assert rep.shape == (4, 8)
  assert 'cross_and_deep' not in [layer.name for layer in model.core.layers]
  assert model.core.get_layer('deep_0').kernel.shape[0] == model.core.get_layer(
      'cross_2').output.shape[-1]                       # the MLP reads the last cross layer
  with pytest.raises(ValueError, match='structure must be parallel or stacked'):
    dcn_v2.DcnV2Config(structure='both')
