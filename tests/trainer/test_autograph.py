"""trainer.autograph: AutoGraph leaves tf_keras's code alone, still converts ours, and a
seeded training gives the same weights either way."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow.python.autograph.core import config

from helpers import TINY_CARDS, TINY_SPEC, tiny_data
from trainer import autograph, models
from trainer.layers.embedding import FieldEmbedding
from trainer.models import resort


@pytest.fixture
def without_rule(monkeypatch):
  """AutoGraph's rules as TensorFlow ships them (no tf_keras rule)."""
  monkeypatch.setattr(config, 'CONVERSION_RULES', tuple(
      r for r in config.CONVERSION_RULES if not r.matches(autograph.TF_KERAS)))


def test_tensorflow_alone_converts_tf_keras(without_rule):
  # Why the module exists: TensorFlow's rules skip `keras` but not `tf_keras`.
  assert autograph.is_converted(keras.layers.Dense.call)
  assert autograph.is_converted(keras.layers.Layer.__call__)


def test_rule_skips_tf_keras_only(without_rule):
  before = len(config.CONVERSION_RULES)
  autograph.leave_tf_keras_unconverted()
  autograph.leave_tf_keras_unconverted()
  assert len(config.CONVERSION_RULES) == before + 1
  assert not autograph.is_converted(keras.layers.Dense.call)
  assert not autograph.is_converted(keras.layers.Layer.__call__)
  assert not autograph.is_converted(keras.Model.train_step)
  # Our layers' code is still converted, as Keras asks for subclassed layers.
  assert autograph.is_converted(FieldEmbedding.call)


def _trained_weights(name, config):
  keras.utils.set_random_seed(0)
  tf.config.experimental.enable_op_determinism()
  model = models.build(name, TINY_SPEC, TINY_CARDS, config)
  x, y = tiny_data(256)
  model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(64), epochs=2, verbose=0)
  return model.get_weights()


def test_same_training_with_and_without_rule(without_rule, monkeypatch):
  """models.build adds the rule; a seeded fit then gives bit-identical weights to one
  with tf_keras converted (the same graph ops). RE-SORT: its layers are our own (still
  converted) around tf_keras's (no longer converted)."""
  name, config = 'resort', resort.ReSortConfig()
  with monkeypatch.context() as m:
    m.setattr(autograph, 'leave_tf_keras_unconverted', lambda: None)
    converted = _trained_weights(name, config)
    assert autograph.is_converted(keras.layers.Dense.call)
  unconverted = _trained_weights(name, config)
  assert not autograph.is_converted(keras.layers.Dense.call)
  assert len(converted) == len(unconverted)
  for a, b in zip(converted, unconverted):
    np.testing.assert_array_equal(a, b)
