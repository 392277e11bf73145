"""The Trainer component's ``run_fn``: train, early-stop and export with signatures.

Exported signatures of the SavedModel:

* ``serving_default``: serialized ``tf.Example`` strings (``examples``) -> the primary
  label's probability. The Transform graph is attached, no label is needed.
* ``transform_features``: serialized ``tf.Example`` -> every transformed feature, labels
  included when present (the Evaluator reads the transformed label through it).
* ``predict_raw``: one named tensor per raw feature, shape [batch], in the raw
  column's dtype -> the same output as ``serving_default``. For direct calls.

``fn_args.custom_config`` carries the feature spec (``feature_spec``), the model
settings (``model``), the batch size, the early-stopping patience and the name of the
``tf.distribute`` strategy (see :func:`distribution_strategy`).
"""

from __future__ import annotations

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import json  # noqa: E402
from typing import Any, Dict, List  # noqa: E402

from absl import logging  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from trainer import model as model_lib  # noqa: E402
from transform import feature_spec as fs  # noqa: E402
from transform.preprocessing import transformed_name  # noqa: E402

OUTPUT_KEY = 'probability'
STRATEGIES = ('default', 'mirrored', 'multi_worker_mirrored', 'one_device_cpu')


def distribution_strategy(name: str) -> tf.distribute.Strategy:
  """The ``tf.distribute`` strategy named in configuration (one of :data:`STRATEGIES`).

  ``multi_worker_mirrored`` reads the cluster from ``TF_CONFIG``, as on Kubeflow or
  Vertex; ``mirrored`` uses every local GPU.
  """
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker_mirrored':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'one_device_cpu':
    return tf.distribute.OneDeviceStrategy('/cpu:0')
  raise ValueError(f'unknown distribution strategy {name!r}; choose from {STRATEGIES}')


def _input_fn(files: List[str], data_accessor, tf_transform_output, spec: fs.FeatureSpec,
              batch_size: int) -> tf.data.Dataset:
  label = transformed_name(spec.primary_label.name)
  features = {transformed_name(n) for n in spec.feature_names}
  ds = data_accessor.tf_dataset_factory(
      files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label),
      tf_transform_output.transformed_metadata.schema)
  # Other labels (e.g. converted) are in the transformed data too: never features.
  return ds.map(lambda x, y: ({k: v for k, v in x.items() if k in features}, y))


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
                         output_dir: str) -> None:
  """Saves ``model`` with the Transform layer and the three signatures."""
  model.tft_layer = tf_transform_output.transform_features_layer()
  serving_spec = _raw_feature_spec(tf_transform_output, spec, with_labels=False)
  full_spec = _raw_feature_spec(tf_transform_output, spec, with_labels=True)
  inputs = {transformed_name(n) for n in spec.feature_names}

  def predict_transformed(raw):
    transformed = model.tft_layer(raw)
    return {OUTPUT_KEY: model({k: v for k, v in transformed.items() if k in inputs})}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def serve_examples(serialized):
    return predict_transformed(tf.io.parse_example(serialized, serving_spec))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
  def transform_features(serialized):
    return model.tft_layer(tf.io.parse_example(serialized, full_spec))

  raw_signature = {name: tf.TensorSpec([None], s.dtype, name=name)
                   for name, s in sorted(serving_spec.items())}

  @tf.function(input_signature=[raw_signature])
  def predict_raw(features):
    return predict_transformed({k: _as_raw_feature(features[k], serving_spec[k])
                                for k in serving_spec})

  signatures = {
      'serving_default': serve_examples.get_concrete_function(),
      'transform_features': transform_features.get_concrete_function(),
      'predict_raw': predict_raw.get_concrete_function(),
  }
  model.save(output_dir, save_format='tf', signatures=signatures)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """TFX Trainer entry point."""
  config: Dict[str, Any] = fn_args.custom_config or {}
  if 'feature_spec' not in config:
    raise ValueError('Trainer needs custom_config["feature_spec"]')
  spec = fs.from_dict(config['feature_spec'])
  batch_size = int(config.get('batch_size', 512))
  epochs = int(config.get('epochs', 10))
  patience = int(config.get('patience', 2))
  model_config = model_lib.ModelConfig(**config.get('model', {}))
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)

  train_ds = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                       spec, batch_size)
  eval_ds = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                      spec, batch_size)
  with distribution_strategy(config.get('distribution_strategy', 'default')).scope():
    model = model_lib.build_model(
        spec, model_lib.cardinalities(spec, tf_transform_output), model_config)
  model.summary(print_fn=logging.info)
  steps_per_epoch = max(1, fn_args.train_steps // epochs)
  callbacks = [
      keras.callbacks.EarlyStopping(monitor='val_logloss', mode='min', patience=patience,
                                    restore_best_weights=True, verbose=1),
      keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch'),
  ]
  history = model.fit(train_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                      validation_data=eval_ds, validation_steps=fn_args.eval_steps,
                      callbacks=callbacks, verbose=2)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, 'history.json'), 'w') as f:
    json.dump({k: [float(x) for x in v] for k, v in history.history.items()}, f)
  export_serving_model(model, tf_transform_output, spec, fn_args.serving_model_dir)
