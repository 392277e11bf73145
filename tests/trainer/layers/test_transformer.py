"""trainer/layers/transformer.py: the field transformer's final-norm option."""
import numpy as np
import tensorflow as tf

from trainer.layers.transformer import FieldTransformer


def test_field_transformer_final_norm_option():
  e = 3.0 * tf.random.normal([3, 4, 8], seed=1)
  normed = FieldTransformer(0, 4)
  raw = FieldTransformer(0, 4, final_norm=False)
  # No blocks: the output is the input plus the field-identity embedding, normalised per
  # field (zero mean, unit variance over the width) only with the final norm.
  out = normed(e).numpy()
  np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.std(-1), 1.0, rtol=1e-2)
  np.testing.assert_allclose(raw(e), e + raw.field_ids[None], rtol=1e-6)
  assert len(raw.weights) == len(normed.weights) - 2
  clone = FieldTransformer.from_config(raw.get_config())
  assert clone.get_config() == raw.get_config() and clone.final_norm is False
