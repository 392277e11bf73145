"""tf.Transform in one process, without TFX: for tests, benchmarks and off-policy evaluation.

:func:`transform_tables` runs the project's own ``preprocessing_fn`` (via
:func:`transform.preprocessing.transform_spec`) with tf.Transform's Beam implementation on
in-memory tables: the analyzers see the first (training) table only, every table is then
transformed. It writes what the TFX Trainer would receive from Transform:

* ``<out>/transform_graph``: ``transform_fn/``, ``transformed_metadata/`` and the raw
  ``metadata/``, readable by ``tft.TFTransformOutput``;
* ``<out>/<split>/data.tfrecord``: transformed ``tf.Example`` records per split.

:func:`data_accessor` gives the TFX ``DataAccessor`` that reads them, so ``run_fn`` can be
called directly (:func:`fn_args`).
"""

from __future__ import annotations

import os
import tempfile
from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa
import tensorflow as tf

from transform import feature_spec as fs
from transform.preprocessing import transform_spec


def raw_feature_spec(table: pa.Table, spec: fs.FeatureSpec) -> Dict[str, tf.io.FixedLenFeature]:
  """One scalar feature per column the spec reads, typed from the table."""
  out = {}
  for name in spec.required_columns:
    if name not in table.column_names:
      raise ValueError(f'column {name!r} of the spec is not in the table '
                       f'(columns: {table.column_names})')
    t = table.schema.field(name).type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
      out[name] = tf.io.FixedLenFeature([], tf.int64)
    elif pa.types.is_floating(t):
      out[name] = tf.io.FixedLenFeature([], tf.float32)
    else:
      out[name] = tf.io.FixedLenFeature([], tf.string)
  return out


def record_batches(table: pa.Table, feature_spec, rows_per_batch: int = 8192
                   ) -> List[pa.RecordBatch]:
  """The table's spec columns in tf.Transform's Arrow format: one list<value> per cell."""
  import pyarrow.compute as pc
  n = table.num_rows
  offsets = pa.array(np.arange(n + 1, dtype=np.int32))
  arrays = []
  for name, f in feature_spec.items():
    col = table.column(name).combine_chunks()
    if f.dtype == tf.string:
      values = pc.fill_null(pc.cast(pc.cast(col, pa.string()), pa.binary()), b'')
    elif f.dtype == tf.int64:
      values = pc.cast(col, pa.int64())
    else:
      values = pc.cast(col, pa.float32())
    arrays.append(pa.ListArray.from_arrays(offsets, values))
  batch = pa.RecordBatch.from_arrays(arrays, list(feature_spec))
  return [batch.slice(i, rows_per_batch) for i in range(0, n, rows_per_batch)]


def _encode(item, schema_bytes: bytes):
  from tensorflow_metadata.proto.v0 import schema_pb2
  from tfx_bsl.coders import example_coder
  schema = schema_pb2.Schema.FromString(schema_bytes)
  batch = item[0] if isinstance(item, tuple) else item
  return example_coder.RecordBatchToExamplesEncoder(schema).encode(batch)


def transform_tables(tables: Dict[str, pa.Table], spec: fs.FeatureSpec, out_dir: str,
                     analyze: str = 'train') -> Dict[str, str]:
  """Analyzes ``tables[analyze]``, transforms every table; returns the written paths.

  Returns ``{'transform_graph': dir, <split>: tfrecord file, ...}``.
  """
  import apache_beam as beam
  import tensorflow_transform as tft
  import tensorflow_transform.beam as tft_beam
  from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
  from tfx_bsl.public import tfxio

  feature_spec = raw_feature_spec(tables[analyze], spec)
  raw_schema = schema_utils.schema_from_feature_spec(feature_spec)
  raw_metadata = dataset_metadata.DatasetMetadata(raw_schema)
  graph_dir = os.path.join(out_dir, 'transform_graph')
  paths = {'transform_graph': graph_dir}
  # Raw tf.Examples on disk, read back through TFXIO: the path TFX's Transform takes
  # (beam.Create would pickle every row into the pipeline).
  sources = {}
  for split, table in tables.items():
    os.makedirs(os.path.join(out_dir, 'raw', split), exist_ok=True)
    path = os.path.join(out_dir, 'raw', split, 'data.tfrecord')
    with tf.io.TFRecordWriter(path) as w:
      for batch in record_batches(table, feature_spec):
        for record in _encode(batch, raw_schema.SerializeToString()):
          w.write(record)
    sources[split] = tfxio.TFExampleRecord(file_pattern=path, schema=raw_schema,
                                           telemetry_descriptors=['ctr'])
  adapter = sources[analyze].TensorAdapterConfig()
  # One Beam pipeline for the analysis, every split and the writes.
  with beam.Pipeline(argv=['--direct_running_mode=in_memory']) as p, tft_beam.Context(
      temp_dir=tempfile.mkdtemp(dir=out_dir), force_tf_compat_v1=False):
    raw = {split: p | f'Read_{split}' >> src.BeamSource() for split, src in sources.items()}
    (_, transformed_metadata), transform_fn = (
        (raw[analyze], adapter)
        | tft_beam.AnalyzeAndTransformDataset(lambda x: transform_spec(spec, x),
                                              output_record_batches=True))
    _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
    schema = getattr(transformed_metadata, 'dataset_metadata', transformed_metadata).schema
    for split in tables:
      transformed, _ = (((raw[split], adapter), transform_fn)
                        | f'Transform_{split}' >> tft_beam.TransformDataset(
                            output_record_batches=True))
      os.makedirs(os.path.join(out_dir, split), exist_ok=True)
      paths[split] = os.path.join(out_dir, split, 'data.tfrecord')
      _ = (transformed
           | f'Encode_{split}' >> beam.FlatMap(_encode, schema.SerializeToString())
           | f'Write_{split}' >> beam.io.WriteToTFRecord(paths[split], shard_name_template=''))
  metadata_io.write_metadata(raw_metadata, os.path.join(
      graph_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return paths


def data_accessor():
  """The TFX ``DataAccessor`` for uncompressed transformed ``tf.Example`` files."""
  from tfx.components.trainer import fn_args_utils
  from tfx_bsl.public import tfxio

  def dataset_factory(files, options, schema):
    return tfxio.TFExampleRecord(file_pattern=files, schema=schema,
                                 telemetry_descriptors=['ctr']).TensorFlowDataset(options)

  def record_batch_factory(files, options, schema):
    return tfxio.TFExampleRecord(file_pattern=files, schema=schema,
                                 telemetry_descriptors=['ctr']).RecordBatches(options)

  return fn_args_utils.DataAccessor(tf_dataset_factory=dataset_factory,
                                    record_batch_factory=record_batch_factory,
                                    data_view_decode_fn=None)


def fn_args(paths: Dict[str, str], out_dir: str, custom_config: Dict,
            train_steps: int, eval_steps: int, train: str = 'train', eval: str = 'eval',
            serving_dir: Optional[str] = None):
  """The ``FnArgs`` the TFX Trainer would pass ``run_fn`` for these files."""
  from tfx import v1 as tfx
  return tfx.components.FnArgs(
      train_files=[paths[train]], eval_files=[paths[eval]],
      transform_output=paths['transform_graph'], transform_graph_path=paths['transform_graph'],
      serving_model_dir=serving_dir or os.path.join(out_dir, 'serving_model'),
      model_run_dir=os.path.join(out_dir, 'model_run'), train_steps=train_steps,
      eval_steps=eval_steps, data_accessor=data_accessor(), custom_config=custom_config)


def write_example_splits(tables: Dict[str, pa.Table], spec: fs.FeatureSpec,
                         out_dir: str) -> Dict[str, str]:
  """Each table as an ExampleGen split folder (``<out_dir>/Split-<name>``, gzipped
  ``tf.Example`` TFRecords of the spec's columns): the raw input of the GBDT baseline and
  the custom evaluators, for tests and benchmarks. {split: folder}."""
  out = {}
  for name, table in tables.items():
    folder = os.path.join(out_dir, f'Split-{name}')
    os.makedirs(folder, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(folder, 'data_tfrecord-00000-of-00001.gz'),
                              options='GZIP') as w:
      for record in serialize_examples(table, spec):
        w.write(record)
    out[name] = folder
  return out


def serialize_examples(table: pa.Table, spec: fs.FeatureSpec) -> List[bytes]:
  """Raw ``tf.Example`` records of the spec's columns (what serving_default takes)."""
  from tensorflow_transform.tf_metadata import schema_utils
  feature_spec = raw_feature_spec(table, spec)
  schema = schema_utils.schema_from_feature_spec(feature_spec).SerializeToString()
  out: List[bytes] = []
  for batch in record_batches(table, feature_spec):
    out.extend(_encode(batch, schema))
  return out
