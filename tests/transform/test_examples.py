"""transform/examples.py: raw ExampleGen splits read back as the tables' values, an absent
value left missing."""
import numpy as np
import tensorflow as tf

from transform import examples


def test_read_split_gives_the_tables_values(raw_splits):
  spec, tables, folders = raw_splits
  frame = examples.read_split(folders['test'], ['user_id', 'hour', 'feat_0', 'seq',
                                                'clicked', 'no_such_feature'])
  test = tables['test']
  assert len(frame) == test.num_rows
  assert list(frame['user_id']) == test.column('user_id').to_pylist()
  assert list(frame['hour']) == test.column('hour').to_pylist()
  np.testing.assert_allclose(frame['feat_0'].astype(float),
                             test.column('feat_0').to_numpy(), rtol=1e-6)
  assert list(frame['seq']) == test.column('seq').to_pylist()
  assert frame['no_such_feature'].isna().all()


def test_decode_leaves_an_absent_value_missing():
  def example(**kw):
    feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
               for k, v in kw.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
  frame = examples.decode([example(a='x', b='y'), example(a='z')])
  assert list(frame['a']) == ['x', 'z'] and list(frame['b']) == ['y', None]
