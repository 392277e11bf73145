"""trainer/export.py: the serving model's calibrated probabilities (ESMM's product
included), the last hidden layer the bandit reads, and the signature methods written into
saved_model.pb for TF Serving. The whole export through run_fn: tests/trainer/test_task.py."""
import numpy as np
import pytest
import tensorflow as tf

from serving import signatures as sig
from trainer import export, models
from trainer.layers.calibration import NoCalibration, TemperatureCalibrator
from trainer.models import dnn, heads
from helpers import TINY_CARDS, TINY_SPEC, tiny_data


def test_serving_model_calibrates_each_head_and_multiplies_for_ctcvr():
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(hidden_units=(8,)))
  tasks = model.tasks
  assert [t.key for t in tasks] == ['ctr', 'cvr', 'ctcvr']
  ctr = TemperatureCalibrator(fit_bias=True)
  ctr.temperature, ctr.bias = 2.0, -0.5
  served = export.serving_model(model.core, tasks, {'ctr': ctr, 'cvr': NoCalibration()})
  feats, _ = tiny_data(64)
  logits = {k: v.numpy().ravel() for k, v in model.core(feats).items()}
  out = {k: v.numpy().ravel() for k, v in served(feats).items()}
  assert set(out) == {sig.PROBABILITY, sig.probability('ctr'), sig.probability('cvr'),
                      sig.probability('ctcvr')}
  p_ctr = 1 / (1 + np.exp(-(logits['ctr'] / 2.0 - 0.5)))
  p_cvr = 1 / (1 + np.exp(-logits['cvr']))
  np.testing.assert_allclose(out[sig.PROBABILITY], p_ctr, rtol=1e-5)
  np.testing.assert_allclose(out[sig.probability('cvr')], p_cvr, rtol=1e-5)
  # The product of the calibrated heads, not the uncalibrated ctcvr logit.
  np.testing.assert_allclose(out[sig.probability('ctcvr')], p_ctr * p_cvr, rtol=1e-5)


def test_last_hidden_is_the_input_of_the_primary_logit():
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(hidden_units=(8, 4)),
                       heads.HeadConfig(tasks='primary'))
  hidden = export.last_hidden_model(model.core, model.tasks)
  feats, _ = tiny_data(16)
  h = hidden(feats).numpy()
  assert h.shape == (16, 4)
  dense = model.core.get_layer('clicked_logit')
  np.testing.assert_allclose(h @ dense.kernel.numpy() + dense.bias.numpy(),
                             dense(h).numpy(), rtol=1e-6)


def test_signature_methods_are_rewritten_for_tf_serving(tmp_path):
  from tensorflow.core.protobuf import saved_model_pb2
  module = tf.Module()

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='inputs')])
  def f(x):
    return {'outputs': tf.strings.length(x)}

  tf.saved_model.save(module, str(tmp_path), signatures={
      sig.DEFAULT: f.get_concrete_function(), sig.REGRESSION: f.get_concrete_function()})
  before = (tmp_path / 'fingerprint.pb').read_bytes()
  export.set_signature_methods(str(tmp_path), {sig.REGRESSION: tf.saved_model.REGRESS_METHOD_NAME,
                                               'absent': 'x'})
  saved = saved_model_pb2.SavedModel.FromString((tmp_path / 'saved_model.pb').read_bytes())
  defs = saved.meta_graphs[0].signature_def
  assert defs[sig.REGRESSION].method_name == tf.saved_model.REGRESS_METHOD_NAME
  assert defs[sig.DEFAULT].method_name == tf.saved_model.PREDICT_METHOD_NAME
  assert 'absent' not in defs
  assert (tmp_path / 'fingerprint.pb').read_bytes() != before      # matches the new file
  loaded = tf.saved_model.load(str(tmp_path))                      # TF2 loaders still read it
  assert loaded.signatures[sig.REGRESSION](inputs=tf.constant([b'abc']))['outputs'] == 3


def test_signature_methods_name_a_missing_model(tmp_path):
  with pytest.raises(tf.errors.NotFoundError):
    export.set_signature_methods(str(tmp_path), {sig.REGRESSION: 'x'})
