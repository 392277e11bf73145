"""The baseline embedding + MLP model and the Trainer's helpers."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer import model as model_lib
from trainer import task
from transform import feature_spec as fs

SPEC = fs.from_dict({
    'labels': ['clicked'],
    'categorical': [{'name': 'g'}, {'name': 'u', 'hash_buckets': 100, 'embedding_dim': 8}],
    'numeric': ['x', 'y'],
    'sequence': [{'name': 's', 'max_len': 4}],
})
CARDS = {'g': 3, 'u': 100, 's': 11}


def _data(n, rng):
  x = rng.normal(size=n).astype(np.float32)
  feats = {'g_xf': rng.integers(0, 3, n), 'u_xf': rng.integers(0, 100, n),
           'x_xf': x, 'y_xf': rng.normal(size=n).astype(np.float32),
           's_xf': rng.integers(0, 11, (n, 4))}
  label = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - 1)))).astype(np.float32)
  return feats, label


def test_legacy_keras_in_force():
  assert os.environ['TF_USE_LEGACY_KERAS'] == '1'
  assert tf.keras.Model is keras.Model


def test_build_and_learn():
  model = model_lib.build_model(SPEC, CARDS, model_lib.ModelConfig(hidden_units=(16,),
                                                                   learning_rate=0.01))
  assert model.output_shape == (None, 1)
  assert model.get_layer('emb_u').output_dim == 8
  assert model.get_layer('emb_g').output_dim == fs.default_embedding_dim(3)
  rng = np.random.default_rng(0)
  feats, label = _data(4000, rng)
  before = model.evaluate(feats, label, verbose=0, return_dict=True)
  model.fit(feats, label, epochs=5, batch_size=128, verbose=0)
  after = model.evaluate(feats, label, verbose=0, return_dict=True)
  assert after['loss'] < before['loss']
  assert after['auc'] > 0.75  # the label depends on x through a logistic link


def test_masked_mean_pooling():
  emb = keras.layers.Embedding(5, 2, mask_zero=True,
                               embeddings_initializer=keras.initializers.Constant(
                                   np.arange(10, dtype=np.float32).reshape(5, 2)))
  ids = tf.constant([[1, 2, 0], [0, 0, 0]])
  out = model_lib.MaskedMeanPooling()(emb(ids)).numpy()
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
  dense = task._as_raw_feature(x, tf.io.FixedLenFeature([1], tf.int64))
  assert dense.shape == (2, 1)
  sparse = task._as_raw_feature(x, tf.io.VarLenFeature(tf.int64))
  np.testing.assert_array_equal(tf.sparse.to_dense(sparse).numpy(), [[3], [4]])
