"""transform/local.py: tf.Transform in one process. The analyzers see the training table
alone and every table is transformed with its statistics; raw tables become tf.Examples
with the spec's columns; the files feed run_fn as the TFX Trainer's would."""
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from transform import feature_spec as fs
from transform import local
from transform.preprocessing import transformed_name

SPEC = fs.from_dict({'labels': ['y'], 'categorical': [{'name': 'c', 'min_frequency': 1}],
                     'numeric': ['x']})


def _table(c, x, y):
  return pa.table({'c': c, 'x': np.asarray(x, np.float64), 'y': np.asarray(y, np.int64)})


def test_the_statistics_come_from_the_training_table_alone(tmp_path):
  train = _table(['a', 'a', 'b', 'a'], [1.0, 2.0, 3.0, 6.0], [1, 0, 0, 1])
  evaluation = _table(['b', 'z', 'a'], [2.0, 100.0, -1.0], [0, 1, 0])
  paths = local.transform_tables({'train': train, 'eval': evaluation}, SPEC, str(tmp_path))
  out = tft.TFTransformOutput(paths['transform_graph'])
  spec = out.transformed_feature_spec()
  rows = {split: [tf.io.parse_single_example(r, spec) for r in
                  tf.data.TFRecordDataset(paths[split])] for split in ('train', 'eval')}
  x = np.array([1.0, 2.0, 3.0, 6.0])
  want = (np.array([2.0, 100.0, -1.0]) - x.mean()) / x.std()       # train's mean and std
  got = np.array([float(r[transformed_name('x')]) for r in rows['eval']])
  np.testing.assert_allclose(got, want, rtol=1e-5)
  ids = [int(r[transformed_name('c')]) for r in rows['eval']]
  assert ids[0] != ids[2] and ids[1] not in (ids[0], ids[2])       # 'z' is OOV: never in train
  train_ids = {int(r[transformed_name('c')]) for r in rows['train']}
  assert ids[1] not in train_ids and {ids[0], ids[2]} <= train_ids
  assert [int(r[transformed_name('y')]) for r in rows['eval']] == [0, 1, 0]


def test_examples_carry_the_spec_columns_with_their_types():
  table = pa.table({'c': ['a', None], 'x': [0.5, 2.0], 'y': [1, 0], 'unused': [7, 8]})
  raw = local.raw_feature_spec(table, SPEC)
  assert raw == {'c': tf.io.FixedLenFeature([], tf.string),
                 'x': tf.io.FixedLenFeature([], tf.float32),
                 'y': tf.io.FixedLenFeature([], tf.int64)}
  parsed = [tf.io.parse_single_example(r, raw) for r in local.serialize_examples(table, SPEC)]
  assert [p['c'].numpy() for p in parsed] == [b'a', b'']            # a missing string: ''
  assert [float(p['x']) for p in parsed] == [0.5, 2.0]
  assert 'unused' not in tf.train.Example.FromString(
      local.serialize_examples(table, SPEC)[0]).features.feature
  with pytest.raises(ValueError, match="column 'x' of the spec is not in the table"):
    local.raw_feature_spec(table.drop(['x']), SPEC)


def test_fn_args_point_run_fn_at_the_files(tmp_path):
  paths = {'train': 'tr.tfrecord', 'eval': 'ev.tfrecord', 'test': 'te.tfrecord',
           'transform_graph': 'graph'}
  args = local.fn_args(paths, str(tmp_path), {'k': 1}, train_steps=5, eval_steps=2,
                       eval='test')
  assert args.train_files == ['tr.tfrecord'] and args.eval_files == ['te.tfrecord']
  assert args.transform_output == args.transform_graph_path == 'graph'
  assert args.serving_model_dir == str(tmp_path / 'serving_model')
  assert (args.train_steps, args.eval_steps, args.custom_config) == (5, 2, {'k': 1})
