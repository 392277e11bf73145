"""trainer/models/blocks.py: the shared blocks' settings (the L2 penalties scaled to the
training rows)."""
import pytest

from trainer.models import blocks, dnn


def test_l2_penalties_scale_with_the_training_rows():
  config = dnn.DnnConfig(embedding_l2=1e-4, wide_l2=2e-4, l2_reference_rows=100_000)
  scaled, scale = blocks.scaled_to_rows(config, 800_000)
  assert scale == pytest.approx(0.125)
  assert scaled.embedding_l2 == pytest.approx(1.25e-5) and scaled.wide_l2 == pytest.approx(2.5e-5)
  assert scaled.hidden_units == config.hidden_units and config.embedding_l2 == 1e-4
  same, scale = blocks.scaled_to_rows(dnn.DnnConfig(), 800_000)    # the default: as given
  assert scale == 1.0 and same.embedding_l2 == 1e-4
  with pytest.raises(ValueError, match='training rows'):
    blocks.scaled_to_rows(config, 0)
