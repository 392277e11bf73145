"""components/canonical_example_gen.py: a split's files depend on its set of rows alone,
byte for byte."""
import hashlib
import os

import apache_beam as beam
import tensorflow as tf

from components import canonical_example_gen


def _example(i: int) -> tf.train.Example:
  return tf.train.Example(features=tf.train.Features(feature={
      'i': tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
      'name': tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(i % 7).encode()])),
      'x': tf.train.Feature(float_list=tf.train.FloatList(value=[i / 3]))}))


def _write(path, records, rows_per_file):
  with beam.Pipeline() as p:
    _ = (p | beam.Create(records)
         | canonical_example_gen.WriteCanonicalSplit(str(path), rows_per_file))  # pylint: disable=no-value-for-parameter
  return {f: (path / f).read_bytes() for f in sorted(os.listdir(path))}


def test_canonical_split_depends_on_the_set_of_rows_alone(tmp_path):
  """Another input order, serialised bytes instead of protos, several files: the same
  files, byte for byte, each sorted by the rows' digests."""
  examples = [_example(i) for i in range(500)]
  a = _write(tmp_path / 'a', examples, 200)
  b = _write(tmp_path / 'b', [e.SerializeToString() for e in examples[::-1]], 200)
  assert list(a) == [canonical_example_gen.file_name(i) for i in range(3)]
  assert a == b
  seen = []
  for name in a:
    rows = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / 'a' / name),
                                                       compression_type='GZIP')]
    digests = [hashlib.sha256(r).digest() for r in rows]
    assert digests == sorted(digests) and 100 < len(rows) < 240  # about 500 / 3 each
    seen += [tf.train.Example.FromString(r).features.feature['i'].int64_list.value[0]
             for r in rows]
  assert sorted(seen) == list(range(500))
