"""The Trainer's shared helpers: inputs, cardinalities, strategies, raw-feature forms."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer import export, task
from trainer.layers.embedding import MaskedMeanPooling


def test_legacy_keras_in_force():
  assert os.environ['TF_USE_LEGACY_KERAS'] == '1'
  assert tf.keras.Model is keras.Model


def test_masked_mean_pooling():
  emb = keras.layers.Embedding(5, 2, mask_zero=True,
                               embeddings_initializer=keras.initializers.Constant(
                                   np.arange(10, dtype=np.float32).reshape(5, 2)))
  ids = tf.constant([[1, 2, 0], [0, 0, 0]])
  out = MaskedMeanPooling()(emb(ids)).numpy()
  np.testing.assert_allclose(out[0], [3.0, 4.0])  # mean of rows 1 and 2, padding ignored
  np.testing.assert_allclose(out[1], [0.0, 0.0])  # empty history


def test_distribution_strategies():
  assert isinstance(task.distribution_strategy('one_device_cpu'),
                    tf.distribute.OneDeviceStrategy)
  assert task.distribution_strategy('default') is tf.distribute.get_strategy()
  with pytest.raises(ValueError, match='unknown distribution strategy'):
    task.distribution_strategy('tpu_pod')


def test_as_raw_feature_forms():
  x = tf.constant([3, 4], tf.int64)
  dense = export._as_raw_feature(x, tf.io.FixedLenFeature([1], tf.int64))
  assert dense.shape == (2, 1)
  sparse = export._as_raw_feature(x, tf.io.VarLenFeature(tf.int64))
  np.testing.assert_array_equal(tf.sparse.to_dense(sparse).numpy(), [[3], [4]])
