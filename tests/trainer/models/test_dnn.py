"""trainer/models/dnn.py: the MLP reads every field's embedding, flattened, and its L2
reaches the training loss."""
import numpy as np
import pytest

from trainer import models
from trainer.models import blocks, dnn, heads
from helpers import TINY_CARDS, TINY_SPEC, layer_outputs, tiny_data


def test_the_mlp_reads_the_flattened_fields():
  config = dnn.DnnConfig(hidden_units=(16, 8), embedding_dim=8)
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, config,
                       heads.HeadConfig(tasks='primary'))
  feats, _ = tiny_data(32)
  fields, flat = layer_outputs(model, ['fields', 'flat_fields'], feats)
  n = blocks.field_count(TINY_SPEC, config)
  assert fields.shape == (32, n, 8) and flat.shape == (32, n * 8)
  np.testing.assert_array_equal(flat, fields.reshape(32, -1))
  assert model.core.get_layer('mlp_0').kernel.shape == (n * 8, 16)
  assert model.core.get_layer('mlp_1').kernel.shape == (16, 8)


@pytest.mark.parametrize('l2, penalties', [(0.0, 0), (1e-3, 2)])
def test_mlp_l2_adds_one_penalty_per_layer(l2, penalties):
  base = dict(hidden_units=(16, 8), embedding_l2=0.0, wide=False)
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(l2=l2, **base),
                       heads.HeadConfig(tasks='primary'))
  feats, _ = tiny_data(8)
  model(feats)
  kernels = [model.core.get_layer(f'mlp_{i}').kernel for i in range(2)]
  assert len(model.losses) == penalties
  if penalties:
    want = sum(l2 * float(np.sum(k.numpy() ** 2)) for k in kernels)
    assert float(sum(model.losses)) == pytest.approx(want, rel=1e-5)
