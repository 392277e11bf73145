"""A Parquet executor for ``FileBasedExampleGen`` that keeps zeros.

Why our own: TFX 1.16's ``parquet_executor`` converts rows with
``tfx.components.example_gen.utils.dict_to_example``, which turns every falsy value
(``0``, ``0.0``, ``False``) into an *empty* feature. A label of 0, a price of 0.0 or the
category id 0 then reads as missing, and a category 0 seen at serving time as ``"0"`` maps
to a different id than it had in training. This executor reads the files with Beam's
``ReadFromParquet`` as TFX does and converts each row with :func:`row_to_example`, where only
null values (and empty strings, as CsvExampleGen treats empty cells) are missing.
"""

from __future__ import annotations

import os
from typing import Any, Dict

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.types import standard_component_specs

from components import canonical_example_gen


def _feature(value: Any) -> tf.train.Feature:
  if isinstance(value, np.ndarray):
    value = value.tolist()
  elif isinstance(value, np.generic):
    value = value.item()
  values = value if isinstance(value, (list, tuple)) else [value]
  values = [v for v in values if v is not None and v != '' and v != b'']
  if not values:
    return tf.train.Feature()
  first = values[0]
  if isinstance(first, (str, bytes)):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v.encode('utf-8') if isinstance(v, str) else v for v in values]))
  if isinstance(first, (bool, int)):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
  if isinstance(first, float):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  raise TypeError(f'unsupported Parquet value {first!r} of type {type(first).__name__}')


def row_to_example(row: Dict[str, Any]) -> tf.train.Example:
  """One Parquet row (column -> value) as a ``tf.train.Example``."""
  return tf.train.Example(features=tf.train.Features(
      feature={k: _feature(v) for k, v in row.items()}))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ParquetToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],  # pylint: disable=invalid-name
                      split_pattern: str) -> beam.pvalue.PCollection:
  pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                         split_pattern)
  return (pipeline
          | 'ReadFromParquet' >> beam.io.ReadFromParquet(pattern)
          | 'ToTFExample' >> beam.Map(row_to_example))


class Executor(canonical_example_gen.CanonicalSplitsMixin, BaseExampleGenExecutor):
  """``FileBasedExampleGen`` executor for Parquet files (see the module doc), writing
  canonical splits (:mod:`components.canonical_example_gen`)."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return _ParquetToExample
