"""ExampleGen's raw splits as columns: for the code that reads raw rows, not tensors.

The GBDT baseline (:mod:`trainer.gbdt`: LightGBM reads raw columns, as its users give
them) and the pipeline's custom evaluators (:mod:`components.gbdt_evaluator`,
:mod:`components.off_policy_evaluator`) read an ExampleGen split, gzipped
``tf.Example`` TFRecords, into one value per feature and row. tfx_bsl's
``ExamplesToRecordBatchDecoder`` (the decoder TFX's own TFXIO uses) parses them in C++;
this module only reads the files and flattens its one-value lists.
"""

from __future__ import annotations

import glob
import os
from typing import Iterator, List, Sequence, Union

import numpy as np

READ_BATCH = 8192


def split_files(patterns: Union[str, Sequence[str]]) -> List[str]:
  """The files of ExampleGen split folders or file patterns (``.../Split-test`` or
  ``.../Split-test/*``); an error if there are none."""
  patterns = [patterns] if isinstance(patterns, str) else list(patterns)
  files = []
  for p in patterns:
    files += sorted(glob.glob(os.path.join(p, '*') if os.path.isdir(p) else p))
  if not files:
    raise ValueError(f'no example files in {patterns}')
  return files


def serialized(patterns: Union[str, Sequence[str]]) -> Iterator[List[bytes]]:
  """Batches of serialized ``tf.Example`` records, in file order."""
  import tensorflow as tf
  ds = tf.data.TFRecordDataset(split_files(patterns), compression_type='GZIP')
  for batch in ds.batch(READ_BATCH):
    yield list(batch.numpy())


def _column(array) -> np.ndarray:
  """A decoded list column (one list per row) as one value per row: the first value, or
  None where the list is empty or missing; bytes as str. A column with a value in every
  row keeps its type (int64, float32 or str), else it is an object column."""
  import pyarrow as pa
  import pyarrow.compute as pc
  n = len(array)
  out = np.full(n, None, dtype=object)
  if pa.types.is_null(array.type):
    return out
  lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
  values = array.flatten()
  if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):
    values = values.cast(pa.string())
  values = values.to_numpy(zero_copy_only=False)
  has = lengths > 0
  starts = np.cumsum(lengths) - lengths
  if has.all():
    return values[starts]
  out[has] = values[starts[has]]
  return out


def decode(records: List[bytes], names: Sequence[str] = ()):
  """Serialized ``tf.Example`` records as a pandas frame, one column per feature (the
  ``names``, or every feature found) and one value per cell (None where absent)."""
  import pandas as pd
  from tfx_bsl.coders import example_coder
  batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)
  found = {f: _column(batch.column(i)) for i, f in enumerate(batch.schema.names)}
  names = list(names) or list(found)
  return pd.DataFrame({n: found[n] if n in found else np.full(len(records), None, object)
                       for n in names})


def read_split(patterns: Union[str, Sequence[str]], names: Sequence[str] = ()):
  """Every row of an ExampleGen split as a pandas frame (see :func:`decode`)."""
  import pandas as pd
  frames = [decode(b, names) for b in serialized(patterns)]
  if not frames:
    raise ValueError(f'no rows in {patterns}')
  if not names:  # a feature absent from a whole batch is None there
    every = list(dict.fromkeys(c for f in frames for c in f.columns))
    frames = [f.assign(**{c: np.full(len(f), None, object) for c in every
                          if c not in f.columns})[every] for f in frames]
  return pd.concat(frames, ignore_index=True)
