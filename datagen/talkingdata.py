"""TalkingData AdTracking's ``train_sample.csv`` as the table the pipeline reads.

The conversion step named in ``specs/talkingdata.yaml``: the header's first field
(literally ``..ip`` in the Kaggle file) becomes ``ip``; ``hour`` and ``day_of_week`` are
taken from ``click_time`` (UTC); ``attributed_time`` is dropped, because it exists only for
positive rows and would leak the label. The data is read from ``../shared/data`` and
never copied into the repository.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from datagen.synthetic import write_csv

RAW_FILE = 'train_sample.csv'
COLUMNS = ('ip', 'app', 'device', 'os', 'channel', 'click_time', 'is_attributed')


def default_raw_dir() -> str:
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(here), 'shared', 'data', 'talkingdata_adtracking_sample')


def load(raw_dir: str) -> pa.Table:
  """The converted table (100,000 rows for the Kaggle sample)."""
  path = os.path.join(raw_dir, RAW_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{raw_dir}: not a TalkingData folder, missing {RAW_FILE}')
  table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
      timestamp_parsers=['%Y-%m-%d %H:%M:%S']))
  names = ['ip' if n.lstrip('.') == 'ip' else n for n in table.column_names]
  table = table.rename_columns(names)
  missing = [c for c in COLUMNS if c not in names]
  if missing:
    raise ValueError(f'{path}: missing column(s) {missing}; found {table.column_names}')
  t = table.column('click_time')
  return pa.table({
      **{c: table.column(c) for c in ('ip', 'app', 'device', 'os', 'channel')},
      'hour': pc.hour(t),
      'day_of_week': pc.day_of_week(t),      # 0 = Monday
      'click_time': pc.cast(t, pa.string()),
      'is_attributed': table.column('is_attributed'),
  })


def convert(raw_dir: str, out_dir: str) -> str:
  """Writes ``<out_dir>/csv/talkingdata.csv``; returns the folder. A raw folder that is
  not TalkingData's is refused before anything is written."""
  table = load(raw_dir)
  folder = os.path.join(out_dir, 'csv')
  os.makedirs(folder, exist_ok=True)
  write_csv(table, os.path.join(folder, 'talkingdata.csv'))
  return folder
