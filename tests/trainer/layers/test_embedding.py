"""trainer/layers/embedding.py: the field embedding's shared target tables, padding, match
counts and numeric encodings."""
import numpy as np
import pytest

from trainer.layers.embedding import FieldEmbedding
from transform import feature_spec as fs
from helpers import TINY_CARDS, TINY_SPEC, tiny_data


def test_field_embedding_shares_the_target_table_and_masks_padding():
  layer = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8, adaptive=True,
                         sequence_encoder='attention')
  feats, _ = tiny_data(6)
  out = layer(feats)
  assert out.shape == (6, 5, 8)
  assert layer.tables['cat'].input_dim == 11      # the target's table has a padding row
  assert 's' not in layer.tables                  # the sequence reads the target's table
  assert layer.tables['u'].output_dim == 8        # spec width, projected to the common 8
  assert layer.tables['g'].output_dim == fs.default_embedding_dim(3)
  # Padding never changes the attention's answer.
  seq = np.array([[3, 5, 0, 0]])
  other_pad = feats.copy()
  a = layer({**{k: v[:1] for k, v in feats.items()}, 's_xf': seq})
  b = layer({**{k: v[:1] for k, v in other_pad.items()}, 's_xf': seq})
  np.testing.assert_allclose(a, b)


def test_match_count_field_counts_the_candidate_in_its_sequence():
  layer = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8, sequence_match=True)
  feats, _ = tiny_data(200)
  out = layer(feats).numpy()
  assert layer.field_names == ['g', 'cat', 'u', 'x', 's', 's_matches']
  assert out.shape == (200, 6, 8)
  # cat's vocabulary ids are 0-8; 9 is its OOV bucket, which stands for many values.
  cat, seq = feats['cat_xf'], feats['s_xf']
  want = np.where(cat < 9, (seq == cat[:, None] + 1).sum(1), 0)
  got = layer._matches(TINY_SPEC.field('s'), TINY_SPEC.field('cat'), feats).numpy()
  np.testing.assert_array_equal(got, want)
  assert (want >= 2).any() and (cat == 9).any() and ((seq == 10).sum(1)[cat == 9] > 0).any()
  table = layer.match_tables['s'].embeddings.numpy()
  np.testing.assert_allclose(out[:, 5], table[want], rtol=1e-6)
  clone = FieldEmbedding.from_config(layer.get_config())
  clone(feats)
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(clone(feats).numpy(), out, rtol=1e-6)
  assert FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8)(feats).shape == (200, 5, 8)


def test_periodic_numeric_embedding_moves_non_monotonically_and_round_trips():
  layer = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8, numeric_encoding='periodic',
                         numeric_frequencies=6, numeric_sigma=1.0)
  feats, _ = tiny_data(64)
  grid = np.linspace(-3, 3, 64).astype(np.float32)
  vec = layer({**feats, 'x_xf': grid}).numpy()[:, 3]          # the numeric field
  linear = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8)
  lin = linear({**feats, 'x_xf': grid}).numpy()[:, 3]
  steps = np.sign(np.diff(vec, axis=0))
  # A linear field's coordinates are monotone in x; periodic ones turn (measured: 8 of 8
  # coordinates change direction at sigma 1).
  assert all(len(set(np.sign(np.diff(lin[:, j]))) - {0}) == 1 for j in range(8))
  assert sum(len(set(steps[:, j]) - {0}) > 1 for j in range(8)) >= 4
  clone = FieldEmbedding.from_config(layer.get_config())
  clone({**feats, 'x_xf': grid})
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(clone({**feats, 'x_xf': grid}).numpy()[:, 3], vec, rtol=1e-6)
  with pytest.raises(ValueError, match='numeric_encoding'):
    FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, numeric_encoding='buckets')
