"""Checks a data folder against a feature spec before any long work starts.

ExampleGen would otherwise fail deep inside Beam (or, worse, succeed and leave Transform
or the Trainer to fail minutes later). :func:`check_data` reads every CSV or Parquet
file of the folder with PyArrow (about a second per million rows) and raises
:class:`InputError` naming the file, the column and, for a bad value, the row:

* the folder is missing, empty, or mixes formats;
* a file has no header row or no rows;
* a column the spec names (feature or label) is missing from a file;
* a numeric feature or label column holds a value that is not a number.
"""

from __future__ import annotations

import os
from typing import Dict, List

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from transform import feature_spec as fs

FORMATS = {'.csv': 'csv', '.parquet': 'parquet'}


class InputError(ValueError):
  """Data that the pipeline cannot use; the message says where and why."""


def data_files(folder: str) -> List[str]:
  if not os.path.isdir(folder):
    raise InputError(f'data folder {folder}: does not exist')
  files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                 if not f.startswith('.') and os.path.isfile(os.path.join(folder, f)))
  if not files:
    raise InputError(f'data folder {folder}: is empty; put CSV or Parquet files in it')
  return files


def data_format(folder: str) -> str:
  """'csv' or 'parquet': the one format of every file in ``folder``."""
  files = data_files(folder)
  kinds = {FORMATS.get(os.path.splitext(f)[1].lower()) for f in files}
  if None in kinds:
    bad = [f for f in files if os.path.splitext(f)[1].lower() not in FORMATS]
    raise InputError(f'data folder {folder}: {bad[0]} is neither .csv nor .parquet')
  if len(kinds) > 1:
    raise InputError(f'data folder {folder}: mixes CSV and Parquet files; ExampleGen reads '
                     'one format per folder')
  return kinds.pop()


def _read(path: str, fmt: str, columns: List[str]) -> pa.Table:
  if fmt == 'parquet':
    names = pq.ParquetFile(path).schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
      raise InputError(f'{path}: missing column(s) {missing} named by the feature spec; '
                       f'the file has {names}')
    return pq.read_table(path, columns=columns)
  try:
    with pacsv.open_csv(path) as reader:
      names = reader.schema.names
  except pa.ArrowInvalid as e:
    if os.path.getsize(path) == 0 or 'Empty CSV' in str(e):
      raise InputError(f'{path}: empty file, expected a header row') from None
    raise InputError(f'{path}: cannot read as CSV: {e}') from None
  missing = [c for c in columns if c not in names]
  if missing:
    raise InputError(f'{path}: missing column(s) {missing} named by the feature spec; '
                     f'the header has {names}')
  # Read everything as strings: the numeric check below then names the bad row.
  return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
      include_columns=columns, column_types={c: pa.string() for c in columns},
      strings_can_be_null=True))


def _check_numeric(table: pa.Table, column: str, path: str) -> None:
  col = table.column(column)
  if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) \
      or pa.types.is_boolean(col.type):
    return
  values = pc.utf8_trim_whitespace(col.cast(pa.string()))
  try:
    pc.cast(values, pa.float64())
    return
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    pass
  for i, v in enumerate(values.to_pylist()):
    if v is None or v == '':
      continue
    try:
      float(v)
    except ValueError:
      raise InputError(f'{path}: column "{column}", data row {i + 1}: '
                       f'{v!r} is not a number') from None


def check_data(folder: str, spec: fs.FeatureSpec) -> Dict[str, int]:
  """Validates ``folder`` against ``spec``; returns {'files': n, 'rows': n, 'format': f}."""
  fmt = data_format(folder)
  numeric = [f.name for f in spec.numeric] + spec.label_columns
  rows = 0
  files = data_files(folder)
  for path in files:
    table = _read(path, fmt, spec.required_columns)
    if table.num_rows == 0:
      raise InputError(f'{path}: has a header but no rows')
    for column in numeric:
      _check_numeric(table, column, path)
    rows += table.num_rows
  return {'files': len(files), 'rows': rows, 'format': fmt}
