"""preprocessing_fn, run with tft_beam on a handful of rows, against hand-computed values."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from transform import feature_spec as fs
from transform import preprocessing

SPEC = fs.from_dict({
    'labels': [{'name': 'liked', 'column': 'rating', 'threshold': 4}],
    'categorical': [{'name': 'c'}, {'name': 'rare', 'min_frequency': 2},
                    {'name': 'h', 'hash_buckets': 10}],
    'numeric': [{'name': 'x'}, {'name': 'y', 'log': True}],
    'sequence': [{'name': 'seq', 'max_len': 3},
                 {'name': 'hist', 'max_len': 2, 'target': 'c'},
                 {'name': 'hh', 'max_len': 1, 'target': 'h'}],
})
ROWS = [
    {'c': ['a'], 'rare': ['a'], 'h': [5], 'x': [1.0], 'y': [0.0], 'seq': ['a a c'],
     'rating': [5], 'hist': ['a b'], 'hh': ['6']},
    {'c': ['b'], 'rare': ['b'], 'h': [6], 'x': [2.0], 'y': [math.e - 1], 'seq': [],
     'rating': [3], 'hist': ['z'], 'hh': ['9']},
    {'c': ['a'], 'rare': ['a'], 'h': [7], 'x': [3.0], 'y': [math.e ** 2 - 1], 'seq': ['b'],
     'rating': [4], 'hist': [], 'hh': []},
    {'c': ['a'], 'rare': ['a'], 'h': [5], 'x': [4.0], 'y': [], 'seq': ['b b b b b'],
     'rating': [1], 'hist': ['c'], 'hh': ['5']},
]
RAW_SPEC = {
    'c': tf.io.FixedLenFeature([1], tf.string), 'rare': tf.io.FixedLenFeature([1], tf.string),
    'h': tf.io.FixedLenFeature([1], tf.int64), 'x': tf.io.FixedLenFeature([1], tf.float32),
    'y': tf.io.VarLenFeature(tf.float32), 'seq': tf.io.VarLenFeature(tf.string),
    'rating': tf.io.FixedLenFeature([1], tf.int64),
    'hist': tf.io.VarLenFeature(tf.string), 'hh': tf.io.VarLenFeature(tf.string),
}


@pytest.fixture(scope='module')
def transformed(tmp_path_factory):
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
  with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp('tft')),
                        force_tf_compat_v1=False):
    (data, _), _ = ((ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
        lambda inputs: preprocessing.preprocessing_fn(
            inputs, {'feature_spec': SPEC.to_dict()})))
  return data


def col(rows, name):
  return np.array([r[preprocessing.transformed_name(name)] for r in rows])


def test_numeric_z_score(transformed):
  x = np.array([1, 2, 3, 4.0])
  np.testing.assert_allclose(col(transformed, 'x'), (x - x.mean()) / x.std(), rtol=1e-5)


def test_numeric_log_and_missing_default(transformed):
  y = np.array([0.0, 1.0, 2.0, 0.0])  # log1p of the values; the missing cell is 0
  np.testing.assert_allclose(col(transformed, 'y'), (y - y.mean()) / y.std(), rtol=1e-5)


def test_vocabulary_ids_by_frequency(transformed):
  np.testing.assert_array_equal(col(transformed, 'c'), [0, 1, 0, 0])


def test_frequency_threshold_sends_rare_values_to_oov(transformed):
  # 'b' is seen once < min_frequency 2: the vocabulary is ['a'], so 'b' is OOV id 1.
  np.testing.assert_array_equal(col(transformed, 'rare'), [0, 1, 0, 0])


def test_hashing(transformed):
  expected = tf.strings.to_hash_bucket_fast(['5', '6', '7', '5'], 10).numpy()
  np.testing.assert_array_equal(col(transformed, 'h'), expected)
  assert col(transformed, 'h')[0] == col(transformed, 'h')[3]


def test_sequence_truncated_padded_and_shifted(transformed):
  # After truncation to 3 tokens: b x4, a x2, c x1 -> ids b=0, a=1, c=2; +1, 0 = padding.
  np.testing.assert_array_equal(col(transformed, 'seq'),
                                [[2, 2, 3], [0, 0, 0], [1, 0, 0], [1, 1, 1]])


def test_sequence_with_a_target_uses_the_targets_ids(transformed):
  # c's vocabulary is a=0, b=1 (OOV 2); its sequence's ids are those + 1 (0 = padding).
  np.testing.assert_array_equal(col(transformed, 'hist'), [[1, 2], [3, 0], [0, 0], [3, 0]])
  # A hashed target hashes the tokens the same way: a token equal to the row's value gets
  # the row's id + 1.
  hh, h = col(transformed, 'hh')[:, 0], col(transformed, 'h')
  assert hh[0] == h[1] + 1 and hh[3] == h[0] + 1 and hh[2] == 0


def test_label_threshold(transformed):
  np.testing.assert_array_equal(col(transformed, 'liked'), [1, 0, 1, 0])


def test_needs_the_spec():
  with pytest.raises(ValueError, match='feature_spec'):
    preprocessing.preprocessing_fn({}, {})


def test_round_significant():
  x = tf.constant([123456789012.3, 1.234567891234e-5, -0.000987654321987, 0.0, 7.0],
                  tf.float64)
  np.testing.assert_array_equal(preprocessing.round_significant(x, 9).numpy(),
                                [123456789000.0, 1.23456789e-5, -0.000987654322, 0.0, 7.0])


def _z_scores(tmp_path, values, batch_size):
  spec = fs.from_dict({'labels': [{'name': 'clicked'}],
                       'numeric': [{'name': 'x', 'log': True}]})
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
      {'x': tf.io.FixedLenFeature([1], tf.float32),
       'clicked': tf.io.FixedLenFeature([1], tf.int64)}))
  rows = [{'x': [v], 'clicked': [0]} for v in values]
  with tft_beam.Context(temp_dir=str(tmp_path), desired_batch_size=batch_size,
                        force_tf_compat_v1=False):
    (data, _), _ = ((rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
        lambda inputs: preprocessing.preprocessing_fn(inputs,
                                                      {'feature_spec': spec.to_dict()})))
  return np.sort(col(data, 'x').astype(np.float32))  # float32 values, exactly


def test_z_score_repeats_whatever_the_row_order_and_batches(tmp_path):
  """The same rows in another order and other batches give the same float32 bytes (in
  float32, tf.Transform's own statistics differ in their last bits between the two)."""
  values = np.random.default_rng(0).lognormal(3.0, 2.0, 5000).astype(np.float32)
  a = _z_scores(tmp_path / 'a', values, 7)
  b = _z_scores(tmp_path / 'b', values[::-1], 1000)
  np.testing.assert_array_equal(a, b)
  expected = np.log1p(np.sort(values).astype(np.float64))
  np.testing.assert_allclose(a, (expected - expected.mean()) / expected.std(), atol=2e-6)
