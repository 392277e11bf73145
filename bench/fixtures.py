"""SavedModels for the serving tests, the conformance runs, the benchmarks and the docs'
examples. They are built from ``trainer``, ``transform``, ``datagen`` and ``pipeline``, so
they live here, outside the production packages, where ``serving`` stays free of them.

* :func:`write_toy_model`: a small model with every kind of signature TF Serving routes
  (predict with two inputs of different dtypes and a ``_bytes`` output, classify, regress,
  int64), whose outputs are exact functions of the inputs and of its version, so tests can
  check values and tell versions apart.
* :func:`write_ctr_model`: the project's own model, trained by ``trainer.task.run_fn`` on a
  few thousand generated rows (about a minute), with its real serving signatures.

To run the conformance tests against a real TF Serving::

    python -m bench.fixtures --out /tmp/conformance_models
    docker run -p 8500:8500 -p 8501:8501 -v /tmp/conformance_models:/models \\
        tensorflow/serving:2.16.1 --model_config_file=/models/models.config \
        --allow_version_labels_for_unavailable_models
    TF_SERVING_ADDRESS=localhost pytest tests/serving/test_conformance.py
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')

import numpy as np
import tensorflow as tf

from serving import signatures as sig
from trainer.export import SIGNATURE_METHODS, set_signature_methods

TOY = 'toy'


def toy_expected(x: np.ndarray, version: int) -> np.ndarray:
  """``y`` of the toy model: the row sum of x plus the version."""
  return np.asarray(x, np.float32).sum(axis=1) + np.float32(version)


def write_toy_model(path: str, version: int) -> str:
  """Writes the toy SavedModel for ``version`` to ``path`` (created); returns ``path``."""
  module = tf.Module()
  module.v = tf.Variable(float(version), name='version')

  @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name='x'),
                                tf.TensorSpec([None], tf.string, name='key')])
  def predict(x, key):
    n = tf.shape(x)[0]
    return {'y': tf.reduce_sum(x, axis=1) + module.v,
            'version': tf.fill([n], tf.cast(module.v, tf.int64)),
            'key_bytes': key}

  feature_spec = {'x': tf.io.FixedLenFeature([2], tf.float32)}

  def score(serialized):
    x = tf.io.parse_example(serialized, feature_spec)['x']
    return tf.reduce_sum(x, axis=1) + module.v

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=tf.saved_model.CLASSIFY_INPUTS)])
  def classify(serialized):
    p = tf.sigmoid(score(serialized))
    n = tf.shape(p)[0]
    return {tf.saved_model.CLASSIFY_OUTPUT_CLASSES:
            tf.tile(tf.constant([[b'no', b'yes']]), tf.stack([n, 1])),
            tf.saved_model.CLASSIFY_OUTPUT_SCORES: tf.stack([1.0 - p, p], axis=1)}

  @tf.function(input_signature=[
      tf.TensorSpec([None], tf.string, name=tf.saved_model.REGRESS_INPUTS)])
  def regress(serialized):
    return {tf.saved_model.REGRESS_OUTPUTS: score(serialized)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name='n')])
  def ints(n):
    return {'doubled': n * 2}

  tf.saved_model.save(module, path, signatures={
      sig.DEFAULT: predict.get_concrete_function(),
      sig.CLASSIFICATION: classify.get_concrete_function(),
      sig.REGRESSION: regress.get_concrete_function(),
      'ints': ints.get_concrete_function()})
  set_signature_methods(path, SIGNATURE_METHODS)
  return path


def example(x) -> bytes:
  ex = tf.train.Example()
  ex.features.feature['x'].float_list.value.extend([float(v) for v in x])
  return ex.SerializeToString()


def subset_spec(d: dict, features: Sequence[str]) -> dict:
  """The spec dict ``d`` with only ``features`` kept: the others are ignored columns, and
  slice, group and action keys that name a dropped feature are dropped with it."""
  d = dict(d)
  unknown = set(features) - {f['name'] for k in ('categorical', 'numeric', 'sequence')
                             for f in d[k]}
  if unknown:
    raise ValueError(f'features not in the spec: {sorted(unknown)}')
  d['ignore'] = list(d['ignore'])
  for k in ('categorical', 'numeric', 'sequence'):
    d['ignore'] += [f['name'] for f in d[k] if f['name'] not in features]
    d[k] = [f for f in d[k] if f['name'] in features]
  d['slice_keys'] = [k for k in d['slice_keys'] if k in features]
  if d.get('group_key') not in features:
    d['group_key'] = None
  if d.get('action_key') not in features:
    d['action_key'] = d['propensity_key'] = None
  return d


def write_ctr_model(workdir: str, rows: int = 30_000, train_steps: int = 40,
                    model: str = 'dnn', model_config: Optional[dict] = None,
                    features: Optional[Sequence[str]] = None):
  """Trains ``model`` (the default DNN) with ``run_fn`` on generated rows; returns
  (serving model dir, test table, feature spec). ``model_config`` updates the model's
  config (embedding_dim 4 by default); ``features`` keeps only the named features of the
  default spec (benchmarks vary the feature count with it)."""
  import pyarrow as pa
  from datagen import synthetic
  from trainer import task
  from trainer.args import TrainerArgs
  from transform import feature_spec as fs
  from transform import local
  from pipeline import configs
  d = fs.load(os.path.join(configs.REPO_ROOT, 'specs', 'default.yaml')).to_dict()
  for c in d['categorical']:
    if c['hash_buckets']:
      c['hash_buckets'], c['embedding_dim'] = 1000, 4
  spec = fs.from_dict(d if features is None else subset_spec(d, features))
  table = synthetic.generate(rows, seed=11)
  rng = np.random.default_rng(1)
  keep = (table.column('clicked').to_numpy() == 1) | (rng.random(table.num_rows) < 0.05)
  table = table.filter(pa.array(keep))
  n = table.num_rows
  tables = {'train': table.slice(0, int(0.7 * n)), 'eval': table.slice(int(0.7 * n),
                                                                        int(0.15 * n)),
            'test': table.slice(int(0.85 * n))}
  out = os.path.join(workdir, 'transformed')
  paths = local.transform_tables(tables, spec, out)
  config = TrainerArgs(feature_spec=spec.to_dict(), model=model, epochs=1, batch_size=128,
                       patience=1,
                       model_config={'embedding_dim': 4, **(model_config or {})}
                       ).to_custom_config()
  args = local.fn_args(paths, os.path.join(workdir, 'trainer'), config,
                       train_steps=train_steps, eval_steps=4)
  task.run_fn(args)
  return args.serving_model_dir, tables['test'], spec


def main() -> None:
  p = argparse.ArgumentParser(description='Write the conformance-test models and config.')
  p.add_argument('--out', required=True)
  args = p.parse_args()
  for v in (1, 2):
    write_toy_model(os.path.join(args.out, TOY, str(v)), v)
  with open(os.path.join(args.out, 'models.config'), 'w') as f:
    f.write('model_config_list { config { name: "toy" base_path: "/models/toy" '
            'model_platform: "tensorflow" model_version_policy { all {} } '
            'version_labels { key: "stable" value: 1 } } }\n')
  print(f'wrote toy versions 1 and 2 and models.config under {args.out}')


if __name__ == '__main__':
  main()
