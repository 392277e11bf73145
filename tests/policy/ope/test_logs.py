"""policy/ope/logs.py: logs from Parquet or CSV files and folders, bad rows named."""
import numpy as np
import pandas as pd
import pytest

from policy.ope import estimators, logs


def _frame(n=50):
  rng = np.random.default_rng(0)
  return pd.DataFrame({'user': rng.integers(0, 5, n), 'item': rng.integers(0, 4, n),
                       'slot': rng.integers(1, 3, n), 'click': rng.random(n) < 0.2,
                       'p': np.full(n, 0.25)})


COLUMNS = {'item': 'action', 'slot': 'position', 'click': 'reward', 'p': 'propensity'}


@pytest.mark.parametrize('fmt', ['csv', 'parquet'])
def test_reads_csv_and_parquet_files_and_folders(tmp_path, fmt):
  frame = _frame()
  for i, part in enumerate((frame.iloc[:20], frame.iloc[20:])):
    path = tmp_path / f'part{i}.{fmt}'
    part.to_csv(path, index=False) if fmt == 'csv' else part.to_parquet(path)
  log = logs.read(str(tmp_path), COLUMNS, n_actions=4, position_base=1)
  assert len(log) == 50 and log.n_actions == 4 and log.n_positions == 2
  assert log.context == ['user']
  fb = log.feedback()
  np.testing.assert_array_equal(fb.position, frame['slot'].to_numpy() - 1)
  np.testing.assert_array_equal(fb.reward, frame['click'].to_numpy(float))


@pytest.mark.parametrize('edit, message', [
    (lambda f: f.drop(columns=['p']), r"lack column\(s\) \['propensity'\]"),
    (lambda f: f.assign(p=np.where(np.arange(len(f)) == 4, 0.0, f['p'])),
     r'propensity must be in \(0, 1\]; it is not in row 4'),
    (lambda f: f.assign(p=np.where(np.arange(len(f)) >= 47, 1.2, f['p'])),
     'rows 47, 48, 49'),
    (lambda f: f.assign(item=np.where(np.arange(len(f)) == 8, 9, f['item'])),
     r'action outside the action set \[0, 4\) in row 8'),
    (lambda f: f.assign(item=np.where(np.arange(len(f)) == 3, 1.5, f['item'])),
     'action must be an integer index; it is not in row 3'),
    (lambda f: f.assign(click=np.where(np.arange(len(f)) == 6, np.nan, f['click'])),
     'reward is missing or not finite in row 6'),
])
def test_bad_rows_are_named(tmp_path, edit, message):
  path = tmp_path / 'logs.csv'
  edit(_frame()).to_csv(path, index=False)
  with pytest.raises(estimators.OPEInputError, match=message):
    logs.read(str(path), COLUMNS, n_actions=4, position_base=1)


def test_missing_path_and_unknown_format(tmp_path):
  with pytest.raises(estimators.OPEInputError, match='no such file'):
    logs.read(str(tmp_path / 'nope.csv'))
  (tmp_path / 'x.json').write_text('{}')
  with pytest.raises(estimators.OPEInputError, match='must be .parquet or .csv'):
    logs.read(str(tmp_path / 'x.json'))


