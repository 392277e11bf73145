"""trainer/models/mtt.py, the MultiTaskTransformer: the Transformer over the fields feeds
the shared MLP, normalised per field by default, with the raw embeddings beside it when
``embedding_skip`` is set."""
import numpy as np

from trainer import models
from trainer.models import blocks, mtt
from helpers import TINY_CARDS, TINY_SPEC, layer_outputs, tiny_data


def _build(**kw):
  config = mtt.MttConfig(embedding_dim=16, hidden_units=(32,), transformer_layers=1, **kw)
  return config, models.build('mtt', TINY_SPEC, TINY_CARDS, config)


def test_the_shared_mlp_reads_the_normalised_transformer_output():
  config, model = _build()
  n = blocks.field_count(TINY_SPEC, config)
  feats, _ = tiny_data(32)
  h, flat = layer_outputs(model, ['field_transformer', 'transformer_out'], feats)
  assert h.shape == (32, n, 16)
  np.testing.assert_allclose(h.mean(-1), 0.0, atol=1e-4)   # the final LayerNorm per field
  np.testing.assert_allclose(h.std(-1), 1.0, rtol=2e-2)
  assert model.core.get_layer('shared_mlp_0').kernel.shape == (n * 16, 32)
  np.testing.assert_array_equal(flat, h.reshape(32, -1))
  # Every task of the tiny spec's two labels has its logit (ESMM by default).
  assert set(model.predict(feats, verbose=0)) == {'ctr', 'cvr', 'ctcvr'}


def test_embedding_skip_puts_the_raw_fields_beside_the_transformer():
  config, model = _build(final_norm=False, embedding_skip=True)
  n = blocks.field_count(TINY_SPEC, config)
  feats, _ = tiny_data(32)
  fields, h, mlp_in = layer_outputs(model, ['fields', 'field_transformer', 'mlp_in'], feats)
  np.testing.assert_array_equal(mlp_in, np.concatenate([fields.reshape(32, -1),
                                                        h.reshape(32, -1)], axis=1))
  assert model.core.get_layer('shared_mlp_0').kernel.shape == (2 * n * 16, 32)
  assert np.abs(h.std(-1) - 1.0).max() > 0.05                 # no final norm
