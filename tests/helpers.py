"""What several test modules share and that is not a fixture: the repository's root, the
real datasets of ../shared/data (a test that needs one skips with the reason when it is
absent), and the tiny spec and data the models' tests train on. Fixtures live in
conftest.py, which tests never import."""
import os

import numpy as np
import pytest

from transform import feature_spec as fs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data')


def shared_data(name: str) -> str:
  """Path of a real dataset under ../shared/data, or skip the test with the reason."""
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isdir(path):
    pytest.skip(f'real data {name} not found at {path} (../shared/data is absent)')
  return path


# A spec with every kind of field: plain, hashed and target-sharing categorical fields, a
# numeric one and a sequence of the candidate's category.
TINY_SPEC = fs.from_dict({
    'labels': ['clicked', 'converted'],
    'categorical': ['g', {'name': 'cat'}, {'name': 'u', 'hash_buckets': 100,
                                           'embedding_dim': 8}],
    'numeric': ['x'],
    'sequence': [{'name': 's', 'max_len': 4, 'target': 'cat'}],
})
TINY_CARDS = {'g': 3, 'cat': 10, 'u': 100, 's': 11}


def tiny_data(n, seed=0):
  """Clicks depend on x and on how often the candidate's category is in the sequence;
  conversions happen on a third of clicks."""
  rng = np.random.default_rng(seed)
  cat = rng.integers(0, 10, n)
  seq = rng.integers(0, 11, (n, 4))
  x = rng.normal(size=n).astype(np.float32)
  z = 1.5 * x + 1.0 * (seq == cat[:, None] + 1).sum(1) - 1.0
  clicked = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
  converted = clicked * (rng.random(n) < 0.3)
  feats = {'g_xf': rng.integers(0, 3, n), 'cat_xf': cat, 'u_xf': rng.integers(0, 100, n),
           'x_xf': x, 's_xf': seq}
  return feats, {'clicked_xf': clicked, 'converted_xf': converted}


def write_auction_log(path, episodes, horizon=4):
  """An iPinYou-format auction log of ``episodes`` (lists of lines) at ``path``."""
  with open(path, 'w') as f:
    f.write(f'100\t{horizon}\n')
    for i, ep in enumerate(episodes):
      f.write(f'{i}\n')
      for line in ep:
        f.write(line + '\n')
  return str(path)


def synthetic_auctions(episodes=40, horizon=400, seed=0):
  """Auctions whose prices rise with their pCTRs, and clicks drawn from the pCTRs."""
  from policy.bidding import auctions as auc
  rng = np.random.default_rng(seed)
  pctr = np.clip(rng.lognormal(np.log(0.004), 0.8, (episodes, horizon)), 0, 1)
  price = np.round(rng.lognormal(np.log(60), 0.6, (episodes, horizon)) * (pctr / 0.004) ** 0.3)
  click = (rng.random((episodes, horizon)) < pctr).astype(np.int8)
  return auc.Auctions(click, price, pctr, np.ones_like(click, bool), 'synthetic')
