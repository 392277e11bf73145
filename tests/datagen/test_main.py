"""python -m datagen (datagen/__main__.py): each command writes what the pipeline reads;
bad input is named, exits 2 and writes nothing."""
import os

import pyarrow.csv as pv
import pyarrow.parquet as pq

from datagen import __main__ as cli
from datagen import synthetic


def test_default_writes_the_generated_rows_in_each_format(tmp_path, capsys):
  assert cli.main(['default', '--rows', '600', '--seed', '3', '--out', str(tmp_path),
                   '--formats', 'csv,parquet', '--shards', '2']) == 0
  assert '600 rows' in capsys.readouterr().out
  csv_files = sorted(os.listdir(tmp_path / 'csv'))
  assert len(csv_files) == 2 and all(f.endswith('.csv') for f in csv_files)
  parquet = pq.read_table(tmp_path / 'parquet')
  csv = [pv.read_csv(tmp_path / 'csv' / f) for f in csv_files]
  assert parquet.num_rows == sum(t.num_rows for t in csv) == 600
  want = synthetic.generate(600, 3)                 # the same seed, the same rows
  assert sorted(parquet.column('clicked').to_pylist()) == sorted(
      want.column('clicked').to_pylist())
  assert set(want.column_names) <= set(parquet.column_names)


def test_bad_input_is_named_and_writes_nothing(tmp_path, capsys):
  assert cli.main(['default', '--rows', '50', '--out', str(tmp_path / 'a'),
                   '--formats', 'json']) == 2
  assert "unknown format(s) ['json']" in capsys.readouterr().err
  assert not (tmp_path / 'a').exists()
  assert cli.main(['movielens', '--raw', str(tmp_path), '--out', str(tmp_path / 'b')]) == 2
  assert 'not a MovieLens-100K folder' in capsys.readouterr().err
  assert cli.main(['talkingdata', '--raw', str(tmp_path), '--out', str(tmp_path / 'c')]) == 2
  assert 'not a TalkingData folder' in capsys.readouterr().err
  assert not (tmp_path / 'b').exists() and not (tmp_path / 'c').exists()
