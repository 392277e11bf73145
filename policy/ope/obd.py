"""The Open Bandit Dataset (ZOZOTOWN, Saito et al. 2021) as OPE logs.

``<root>/<policy>/<campaign>/<campaign>.csv`` for the logging policies ``random`` and
``bts`` (Bernoulli Thompson sampling) and the campaigns ``all``, ``men``, ``women``; one
row per shown item: ``item_id`` (the action), ``position`` (1-3, made 0-based here),
``click`` (the reward), ``propensity_score``, ``user_feature_0..3`` (hashed) and
``user-item_affinity_<item>``. ``item_context.csv`` lists the campaign's items.
``prior_bts.yaml`` holds the BTS policy's Beta prior per campaign.

The data are read from ``../shared/data/open_bandit_dataset`` (not redistributed).
"""

from __future__ import annotations

import os

import numpy as np

from policy.ope import logs as logs_lib

CAMPAIGNS = ('all', 'men', 'women')
POLICIES = ('random', 'bts')
N_POSITIONS = 3
COLUMNS = {'item_id': logs_lib.ACTION, 'click': logs_lib.REWARD,
           'propensity_score': logs_lib.PROPENSITY}
DEFAULT_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), '..', 'shared', 'data', 'open_bandit_dataset')


def _path(root: str, policy: str, campaign: str, name: str) -> str:
  if policy not in POLICIES or campaign not in CAMPAIGNS:
    raise ValueError(f'policy must be one of {POLICIES} and campaign one of {CAMPAIGNS}; '
                     f'got {policy!r}, {campaign!r}')
  path = os.path.join(root, policy, campaign, name)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: the Open Bandit Dataset is expected under '
                            f'{root}')
  return path


def n_items(root: str, campaign: str) -> int:
  import pandas as pd
  return len(pd.read_csv(_path(root, 'random', campaign, 'item_context.csv'), index_col=0))


def load(root: str, policy: str, campaign: str) -> logs_lib.Logs:
  """One policy's logs of one campaign, checked (positions 0-based)."""
  import pandas as pd
  frame = pd.read_csv(_path(root, policy, campaign, f'{campaign}.csv'), index_col=0)
  return logs_lib.from_frame(frame, COLUMNS, n_actions=n_items(root, campaign),
                             n_positions=N_POSITIONS, position_base=1, drop=('timestamp',))


def on_policy_value(root: str, policy: str, campaign: str) -> float:
  """The policy's own mean click rate per shown slot: the ground truth of the OBP
  protocol when that policy is evaluated from the other's logs."""
  return float(np.mean(load(root, policy, campaign).frame[logs_lib.REWARD]))
