"""The exported SavedModel: Transform graph + core model + calibrated task heads.

Signatures:

* ``serving_default``: serialized ``tf.Example`` strings (``examples``) -> probabilities.
  ``probability`` is the primary task's; with several tasks every task also has
  ``probability_<task>`` (ESMM: ``probability_ctr``, ``probability_cvr`` = P(conversion |
  click), ``probability_ctcvr`` = pCTR * pCVR). The Transform graph is attached, no label
  is needed.
* ``transform_features``: serialized ``tf.Example`` -> every transformed feature, labels
  included when present (the Evaluator reads the transformed label through it).
* ``predict_raw``: one named tensor per raw feature, shape [batch], in the raw column's
  dtype -> the same outputs as ``serving_default``. For direct calls.
* ``classification`` (method ``tensorflow/serving/classify``): serialized ``tf.Example``
  (``inputs``) -> ``classes`` [batch, 2] = ("0", "1") and ``scores`` [batch, 2] = (1 - p, p)
  of the primary task. TF Serving's ``Classify`` API and REST ``:classify`` need it.
* ``regression`` (method ``tensorflow/serving/regress``): ``inputs`` -> ``outputs`` [batch] =
  p. TF Serving's ``Regress`` API and REST ``:regress`` need it.
* ``last_hidden`` (neural models only): serialized ``tf.Example`` (``examples``) ->
  ``last_hidden`` [batch, k], the input of the primary task's logit layer (the
  representation, or in multi-task models the primary task's tower output), and
  ``probability``. The neural-linear Thompson-sampling bandit (:mod:`policy.bandit`)
  fits its Bayesian linear head on it.

Each headed task's logit passes through its fitted calibrator (temperature and bias by default,
:mod:`trainer.layers.calibration`), whose parameters are weights or constants of the
saved graph, so serving returns calibrated probabilities.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import tensorflow as tf
import tf_keras as keras

from serving import signatures as sig
from trainer.layers.calibration import Calibrator
from trainer.models.heads import Task
from transform import feature_spec as fs
from transform.preprocessing import transformed_name

# Signatures whose method name is set after saving (tf.saved_model.save writes every
# signature as a predict signature).
SIGNATURE_METHODS = {sig.CLASSIFICATION: tf.saved_model.CLASSIFY_METHOD_NAME,
                     sig.REGRESSION: tf.saved_model.REGRESS_METHOD_NAME}


def serving_model(core: keras.Model, tasks: List[Task],
                  calibrators: Dict[str, Calibrator]) -> keras.Model:
  """``{<feature>_xf}`` -> calibrated probabilities, keyed as in ``serving_default``."""
  logits = core(core.input)
  probs = {}
  for t in tasks:
    if t.head:
      probs[t.key] = calibrators[t.key].layer(t.key)(logits[t.key])
  if 'ctcvr' in logits and 'ctcvr' not in probs:  # ESMM: the product of calibrated heads
    probs['ctcvr'] = keras.layers.Multiply(name='ctcvr')([probs['ctr'], probs['cvr']])
  outputs = {sig.PROBABILITY: keras.layers.Activation('linear', name=sig.PROBABILITY)(
      probs[tasks[0].key])}
  if len(tasks) > 1:
    for t in tasks:
      outputs[sig.probability(t.key)] = keras.layers.Activation(
          'linear', name=sig.probability(t.key))(probs[t.key])
  return keras.Model(core.input, outputs, name=f'{core.name}_serving')


def last_hidden_model(core: keras.Model, tasks: List[Task]) -> Optional[keras.Model]:
  """``{<feature>_xf}`` -> the input of the primary task's logit ``Dense``; None when
  the model has no such layer (a body with only its own logit)."""
  primary = next(t for t in tasks if t.head)
  try:
    layer = core.get_layer(f'{primary.key}_logit')
  except ValueError:
    return None
  return keras.Model(core.input, layer.input, name=f'{core.name}_last_hidden')


def _raw_feature_spec(tf_transform_output, spec: fs.FeatureSpec, with_labels: bool):
  raw = dict(tf_transform_output.raw_feature_spec())
  keep = set(spec.feature_names) | (set(spec.label_columns) if with_labels else set())
  return {k: v for k, v in raw.items() if k in keep}


def _as_raw_feature(x: tf.Tensor, feature_spec):
  """A [batch] tensor in the form the Transform layer expects for ``feature_spec``."""
  if isinstance(feature_spec, tf.io.FixedLenFeature):
    return tf.reshape(x, [-1] + list(feature_spec.shape))
  n = tf.shape(x, out_type=tf.int64)[0]
  indices = tf.stack([tf.range(n), tf.zeros([n], tf.int64)], axis=1)
  sparse = tf.SparseTensor(indices, x, tf.stack([n, tf.constant(1, tf.int64)]))
  if isinstance(feature_spec, tf.io.RaggedFeature):
    return tf.RaggedTensor.from_sparse(sparse)
  return sparse


def export_serving_model(model: keras.Model, tf_transform_output, spec: fs.FeatureSpec,
                         output_dir: str, hidden: Optional[keras.Model] = None) -> None:
  """Saves ``model`` (:func:`serving_model`) with the Transform layer and the signatures.

  Saved as a plain ``tf.Module`` SavedModel (``tf.saved_model.save``): TF Serving, TFMA
  and direct callers use only the signatures, and skipping Keras' per-layer metadata
  makes the export several times faster. ``hidden`` (:func:`last_hidden_model`) adds the
  ``last_hidden`` signature.
  """
  module = tf.Module()
  module.model = model
  if hidden is not None:
    module.hidden = hidden
  module.tft_layer = tf_transform_output.transform_features_layer()
  serving_spec = _raw_feature_spec(tf_transform_output, spec, with_labels=False)
  full_spec = _raw_feature_spec(tf_transform_output, spec, with_labels=True)
  inputs = {transformed_name(n) for n in spec.feature_names}

  def predict_transformed(raw):
    transformed = module.tft_layer(raw)
    return module.model({k: v for k, v in transformed.items() if k in inputs})

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.EXAMPLES)])
  def serve_examples(serialized):
    return predict_transformed(tf.io.parse_example(serialized, serving_spec))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.EXAMPLES)])
  def transform_features(serialized):
    return module.tft_layer(tf.io.parse_example(serialized, full_spec))

  raw_signature = {name: tf.TensorSpec([None], s.dtype, name=name)
                   for name, s in sorted(serving_spec.items())}

  @tf.function(input_signature=[raw_signature])
  def predict_raw(features):
    return predict_transformed({k: _as_raw_feature(features[k], serving_spec[k])
                                for k in serving_spec})

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=tf.saved_model.CLASSIFY_INPUTS)])
  def classify(serialized):
    p = tf.reshape(serve_examples(serialized)[sig.PROBABILITY], [-1])
    classes = tf.tile(tf.constant([[b'0', b'1']]), tf.stack([tf.shape(p)[0], 1]))
    return {tf.saved_model.CLASSIFY_OUTPUT_CLASSES: classes,
            tf.saved_model.CLASSIFY_OUTPUT_SCORES: tf.stack([1.0 - p, p], axis=1)}

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=tf.saved_model.REGRESS_INPUTS)])
  def regress(serialized):
    return {tf.saved_model.REGRESS_OUTPUTS:
            tf.reshape(serve_examples(serialized)[sig.PROBABILITY], [-1])}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=sig.EXAMPLES)])
  def last_hidden(serialized):
    transformed = module.tft_layer(tf.io.parse_example(serialized, serving_spec))
    features = {k: v for k, v in transformed.items() if k in inputs}
    return {sig.HIDDEN: module.hidden(features),
            sig.PROBABILITY: module.model(features)[sig.PROBABILITY]}

  signatures = {
      sig.DEFAULT: serve_examples.get_concrete_function(),
      sig.TRANSFORM_FEATURES: transform_features.get_concrete_function(),
      sig.PREDICT_RAW: predict_raw.get_concrete_function(),
      sig.CLASSIFICATION: classify.get_concrete_function(),
      sig.REGRESSION: regress.get_concrete_function(),
  }
  if hidden is not None:
    signatures[sig.LAST_HIDDEN] = last_hidden.get_concrete_function()
  tf.saved_model.save(module, output_dir, signatures=signatures)
  set_signature_methods(output_dir, SIGNATURE_METHODS)


def set_signature_methods(saved_model_dir: str, methods: Dict[str, str]) -> None:
  """Rewrites the ``method_name`` of the named signatures in ``saved_model.pb``.

  TF Serving routes ``Classify``/``Regress`` only to signatures whose method name says so,
  and ``tf.saved_model.save`` has no option for it; the graph is unchanged, so TF2 loaders
  (TFMA, ``tf.saved_model.load``) see the same functions. ``fingerprint.pb`` is rewritten
  to match the new file.
  """
  # pylint: disable=g-direct-tensorflow-import
  from tensorflow.core.protobuf import saved_model_pb2
  from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
  path = os.path.join(saved_model_dir, 'saved_model.pb')
  saved_model = saved_model_pb2.SavedModel()
  with tf.io.gfile.GFile(path, 'rb') as f:
    saved_model.ParseFromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    for name, method in methods.items():
      if name in meta_graph.signature_def:
        meta_graph.signature_def[name].method_name = method
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(saved_model.SerializeToString())
  fingerprint = fingerprinting.CreateFingerprintDef(saved_model_dir)
  with tf.io.gfile.GFile(os.path.join(saved_model_dir, 'fingerprint.pb'), 'wb') as f:
    f.write(fingerprint)
