"""trainer/models/autoint.py: stacked self-attention over the fields beside a DNN on
the same fields (AutoInt+)."""
import numpy as np

from trainer import models
from trainer.models import autoint, blocks, heads
from helpers import TINY_CARDS, TINY_SPEC, layer_outputs, tiny_data


def _build(layers):
  config = autoint.AutoIntConfig(attention_layers=layers, num_heads=2, head_dim=4,
                                 hidden_units=(16,), embedding_dim=8)
  return config, models.build('autoint', TINY_SPEC, TINY_CARDS, config,
                              heads.HeadConfig(tasks='primary'))


def test_attention_layers_stack_and_the_rep_is_attention_then_deep():
  config, model = _build(3)
  n = blocks.field_count(TINY_SPEC, config)
  feats, _ = tiny_data(16)
  h1, h3, attention, deep, rep = layer_outputs(
      model, ['interacting_0', 'interacting_2', 'attention_out', 'deep_drop_0',
              'attention_and_deep'], feats)
  assert h1.shape == h3.shape == (16, n, 2 * 4)        # heads x head_dim per field
  np.testing.assert_array_equal(attention, h3.reshape(16, -1))
  np.testing.assert_array_equal(rep, np.concatenate([attention, deep], axis=1))
  assert model.core.get_layer('interacting_1').input_shape == (None, n, 8)


def test_without_attention_layers_the_fields_pass_as_they_are():
  _, model = _build(0)
  feats, _ = tiny_data(16)
  fields, attention = layer_outputs(model, ['fields', 'attention_out'], feats)
  np.testing.assert_array_equal(attention, fields.reshape(16, -1))
