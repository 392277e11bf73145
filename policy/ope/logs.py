"""Logged bandit feedback from Parquet or CSV files, checked before any estimate.

A log holds one row per shown (round, position): the context features, the ``action``
shown (an index in [0, actions)), its ``position`` in the slate (an index in
[0, positions); absent for single-slot logs), the ``reward`` (a click: 0 or 1, or any
finite number) and the ``propensity`` of that action at that position under the logging
policy, in (0, 1]. Other names map to these through ``columns``
(``{'item_id': 'action', 'click': 'reward', ...}``).

Bad input is refused with the rows named (:class:`policy.ope.estimators.OPEInputError`):
missing columns, a propensity <= 0 or > 1, an action or position outside its set, a
missing reward.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from policy.ope.estimators import Feedback, OPEInputError, as_index, check_rows

ACTION, POSITION, REWARD, PROPENSITY = 'action', 'position', 'reward', 'propensity'
REQUIRED = (ACTION, REWARD, PROPENSITY)


@dataclasses.dataclass
class Logs:
  """A checked log: ``frame`` (pandas) with the standard column names, the action and
  position counts, and the context columns (every other column)."""
  frame: 'object'
  n_actions: int
  n_positions: int
  context: List[str]

  def __len__(self) -> int:
    return len(self.frame)

  def feedback(self, reward_hat: Optional[np.ndarray] = None) -> Feedback:
    f = self.frame
    return Feedback(reward=f[REWARD].to_numpy(np.float64, na_value=np.nan),
                    action=f[ACTION].to_numpy(np.int64),
                    position=f[POSITION].to_numpy(np.int64),
                    pscore=f[PROPENSITY].to_numpy(np.float64, na_value=np.nan),
                    reward_hat=reward_hat, n_actions=self.n_actions,
                    n_positions=self.n_positions)

  def take(self, rows: np.ndarray) -> 'Logs':
    """The rows ``rows`` (e.g. a bootstrap resample), renumbered from 0."""
    return dataclasses.replace(self, frame=self.frame.iloc[rows].reset_index(drop=True))


def _files(path: str) -> List[str]:
  if os.path.isdir(path):
    found = sorted(glob.glob(os.path.join(path, '*.parquet'))
                   + glob.glob(os.path.join(path, '*.csv')))
    if not found:
      raise OPEInputError(f'{path}: no .parquet or .csv files')
    return found
  if not os.path.exists(path):
    raise OPEInputError(f'{path}: no such file')
  return [path]


def read_frame(path: str):
  """A Parquet or CSV file (or a folder of them) as one pandas frame."""
  import pandas as pd
  frames = []
  for f in _files(path):
    if f.endswith('.parquet'):
      frames.append(pd.read_parquet(f))
    elif f.endswith('.csv'):
      frames.append(pd.read_csv(f))
    else:
      raise OPEInputError(f'{f}: logs must be .parquet or .csv')
  return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def from_frame(frame, columns: Optional[Dict[str, str]] = None,
               n_actions: Optional[int] = None, n_positions: Optional[int] = None,
               position_base: int = 0, drop: Sequence[str] = ()) -> Logs:
  """Renames ``columns``, shifts positions by ``position_base`` (1 for 1-based logs) and
  checks every row. ``n_actions``/``n_positions`` default to the largest index + 1."""
  f = frame.rename(columns=dict(columns or {})).drop(columns=list(drop), errors='ignore')
  missing = [c for c in REQUIRED if c not in f.columns]
  if missing:
    raise OPEInputError(f'the logs lack column(s) {missing} (they have '
                        f'{list(f.columns)[:20]}); map yours with columns=')
  if POSITION not in f.columns:
    f = f.assign(**{POSITION: 0})
  elif position_base:
    f = f.assign(**{POSITION: f[POSITION] - position_base})
  f = f.reset_index(drop=True)
  for name in (ACTION, POSITION):
    f[name] = as_index(f[name].to_numpy(), name)
  if len(f) == 0:
    raise OPEInputError('the logs have no rows')
  actions = int(n_actions if n_actions is not None else f[ACTION].max() + 1)
  positions = int(n_positions if n_positions is not None else f[POSITION].max() + 1)
  logs = Logs(f, actions, positions,
              [c for c in f.columns if c not in (ACTION, POSITION, REWARD, PROPENSITY)])
  check_rows(logs.feedback(), actions, positions)
  return logs


def read(path: str, columns: Optional[Dict[str, str]] = None, **kwargs) -> Logs:
  """:func:`read_frame` then :func:`from_frame`."""
  return from_frame(read_frame(path), columns, **kwargs)
