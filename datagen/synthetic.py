"""Synthetic ad-impression logs with known click and conversion probabilities.

The embedded default dataset of the project. Every row is one ad impression with the
production schema's shape (see ``specs/default.yaml``), two labels and the *true*
probabilities that generated them, so that tests can measure exact calibration and the
Bayes-optimal AUC. It needs nothing but NumPy and PyArrow and makes 1M rows in seconds.

The world
---------
A :class:`SyntheticWorld` is every random parameter of the click and conversion
functions, drawn once from ``seed``. Rows are then drawn from the world (same seed, a
separate stream), so ``generate(n, seed)`` is deterministic and the true probability of
any row, under any action, can be recomputed later by :meth:`SyntheticWorld.click_logit`.

Entities: 200k users (each with a fixed ``gender``, ``age_group`` and three favourite ad
categories), 120k ads, each in one of 4k campaigns, each owned by one of 600 advertisers;
an ad has one of 60 categories (``ad_category``); ``seq`` is the user's recent
categories, so the sequence effect needs ``seq`` read against it (target attention).
Users and ads are drawn with power-law popularity.

Click probability (``true_ctr``), for the displayed creative ``action`` ``a``::

    logit = BASE_CTR_LOGIT
          + 0.6 u[user] + 0.5 d[ad] + 0.3 c[campaign] + inv[inventory]        main effects
          + 0.3 sin(2 pi (hour - 14) / 24)                                      diurnal cycle
          + GA[gender, age_group] + AC[age_group, category]                    pairwise
          + IH[inventory, hour]            (sparse: 15% of cells non-zero)      pairwise
          + GAD[gender, age_group, day_of_week] (sparse: 10% of cells, +-0.8)    third order
          + 0.5 tanh(z(l_feat_0)) tanh(z(feat_1)) [inventory is premium]        third order
          + 0.25 z(history_0) + 0.2 z(l_feat_1) - 0.15 z(feat_2)                dense
          + 0.35 min(#(category of ad in seq), 3)                               sequence
          + A[a] + AI[inventory, a] + AA[age_group, a]                          action

where ``z(x) = (log1p(x) - mu) / sigma`` with the generating distribution's own constants
(:data:`DENSE_SPECS`). Conversion probability given a click (``true_cvr``)::

    logit = BASE_CVR_LOGIT + 0.5 v[advertiser] + 0.3 z(history_3)
          + CA[category, age_group] + 0.4 [gender == 1 and hour >= 18]

``converted`` is drawn only for clicked rows, so it is impossible without a click;
``true_ctcvr = true_ctr * true_cvr``. The base logits are set so that the click rate is
about 2% and about 10% of clicks convert.

Other columns
-------------
* ``action`` / ``propensity``: the creative chosen by a logging policy (softmax of a
  noisy preference over :data:`N_ACTIONS` creatives, mixed with 10% uniform exploration)
  and the probability it had; used by off-policy evaluation.
* ``market_price``: the second price of the impression's auction (CPM), log-normal and
  correlated with the true click logit; used by bidding.
* ``spurious`` (only with ``spurious=True``): equals the click label plus noise before
  the drift switch (row fraction ``drift_at`` in time order) and pure noise after it.
* ``event_time``: seconds since the start of the 14-day log; rows are in time order.
* ``true_ctr``, ``true_cvr``, ``true_ctcvr``: never to be used as features.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

N_USERS = 200_000
N_ADS = 120_000
N_CAMPAIGNS = 4_000
N_ADVERTISERS = 600
N_CATEGORIES = 60
N_INVENTORY = 18
N_AGE_GROUPS = 8
N_ACTIONS = 6
MAX_SEQ_LEN = 20
LOG_DAYS = 14

BASE_CTR_LOGIT = -5.3
BASE_CVR_LOGIT = -2.45

# name -> (kind, mu, sigma) of log1p(x): counters are floor(lognormal), prices are
# lognormal rounded to cents. z(x) uses exactly these mu and sigma.
DENSE_SPECS: Dict[str, tuple] = {}
for _i in range(6):
  DENSE_SPECS[f'l_feat_{_i}'] = ('count', 2.0 + 0.3 * _i, 1.2)
for _i in range(8):
  DENSE_SPECS[f'feat_{_i}'] = ('price', 0.5 + 0.25 * _i, 0.8)
for _i in range(6):
  DENSE_SPECS[f'history_{_i}'] = ('count', 1.0 + 0.2 * _i, 1.0)

CATEGORICAL_COLUMNS = ('gender', 'age_group', 'inventory_id', 'day_of_week', 'hour',
                       'user_id', 'ad_id', 'ad_category', 'advertiser_id', 'campaign_id',
                       'action')
LABEL_COLUMNS = ('clicked', 'converted')
TRUTH_COLUMNS = ('true_ctr', 'true_cvr', 'true_ctcvr')


def _z(name: str, x: np.ndarray) -> np.ndarray:
  _, mu, sigma = DENSE_SPECS[name]
  return (np.log1p(np.maximum(x, 0.0)) - mu) / sigma


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-x))


def _power_law_cdf(n: int, exponent: float) -> np.ndarray:
  w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
  return np.cumsum(w) / w.sum()


@dataclasses.dataclass
class SyntheticWorld:
  """Every random parameter of the click and conversion functions, drawn from a seed."""
  seed: int = 0

  def __post_init__(self):
    rng = np.random.default_rng([self.seed, 1])
    # Entities.
    self.user_gender = rng.integers(0, 2, N_USERS)
    self.user_age = rng.choice(N_AGE_GROUPS, N_USERS,
                               p=np.array([4, 12, 20, 20, 16, 12, 9, 7]) / 100)
    self.user_fav = rng.integers(0, N_CATEGORIES, (N_USERS, 3))
    self.user_activity = rng.normal(0.0, 1.0, N_USERS)
    self.ad_campaign = rng.integers(0, N_CAMPAIGNS, N_ADS)
    self.campaign_advertiser = rng.integers(0, N_ADVERTISERS, N_CAMPAIGNS)
    self.ad_category = rng.integers(0, N_CATEGORIES, N_ADS)
    # Popularity: ids are shuffled so that popularity does not follow id order.
    self.user_perm = rng.permutation(N_USERS)
    self.ad_perm = rng.permutation(N_ADS)
    self.user_cdf = _power_law_cdf(N_USERS, 0.75)
    self.ad_cdf = _power_law_cdf(N_ADS, 0.8)
    self.inventory_p = rng.dirichlet(np.full(N_INVENTORY, 2.0))
    self.premium_inventory = rng.permutation(N_INVENTORY)[:5]
    # Click function.
    self.u_bias = rng.normal(0, 1, N_USERS)
    self.d_bias = rng.normal(0, 1, N_ADS)
    self.c_bias = rng.normal(0, 1, N_CAMPAIGNS)
    self.inv_eff = rng.normal(0, 0.4, N_INVENTORY)
    self.ga = rng.normal(0, 0.35, (2, N_AGE_GROUPS))
    self.ac = rng.normal(0, 0.4, (N_AGE_GROUPS, N_CATEGORIES))
    self.ih = rng.normal(0, 0.6, (N_INVENTORY, 24)) * (rng.random((N_INVENTORY, 24)) < 0.15)
    self.gad = (rng.choice([-0.8, 0.8], (2, N_AGE_GROUPS, 7))
                * (rng.random((2, N_AGE_GROUPS, 7)) < 0.10))
    self.act = rng.normal(0, 0.2, N_ACTIONS)
    self.act_inv = rng.normal(0, 0.3, (N_INVENTORY, N_ACTIONS))
    self.act_age = rng.normal(0, 0.3, (N_AGE_GROUPS, N_ACTIONS))
    # Logging policy: a noisy copy of the action effects.
    self.log_pref = self.act_inv + rng.normal(0, 0.3, (N_INVENTORY, N_ACTIONS))
    # Conversion function.
    self.v_adv = rng.normal(0, 1, N_ADVERTISERS)
    self.ca = rng.normal(0, 0.4, (N_CATEGORIES, N_AGE_GROUPS))
    # Market price.
    self.inv_price = rng.normal(0, 0.5, N_INVENTORY)

  # --- the documented functions --------------------------------------------------------
  def click_logit(self, cols: Dict[str, np.ndarray], seq_match: np.ndarray,
                  action: Optional[np.ndarray] = None) -> np.ndarray:
    """The true click logit of rows ``cols`` had creative ``action`` been shown.

    Args:
      cols: integer categorical columns and raw dense columns, as written by
        :func:`generate` (``user_id``, ``ad_id``, ... ``history_5``).
      seq_match: per row, how often the ad's category occurs in ``seq``
        (:func:`sequence_match`).
      action: creatives to score; defaults to the logged ``cols['action']``.
    """
    a = cols['action'] if action is None else np.broadcast_to(action, cols['user_id'].shape)
    user, ad = cols['user_id'], cols['ad_id']
    camp = self.ad_campaign[ad]
    cat = self.ad_category[ad]
    g, age = cols['gender'], cols['age_group']
    inv, hour, dow = cols['inventory_id'], cols['hour'], cols['day_of_week']
    premium = np.isin(inv, self.premium_inventory)
    return (BASE_CTR_LOGIT
            + 0.6 * self.u_bias[user] + 0.5 * self.d_bias[ad] + 0.3 * self.c_bias[camp]
            + self.inv_eff[inv]
            + 0.3 * np.sin(2 * np.pi * (hour - 14) / 24)
            + self.ga[g, age] + self.ac[age, cat] + self.ih[inv, hour]
            + self.gad[g, age, dow]
            + 0.5 * np.tanh(_z('l_feat_0', cols['l_feat_0']))
            * np.tanh(_z('feat_1', cols['feat_1'])) * premium
            + 0.25 * _z('history_0', cols['history_0'])
            + 0.2 * _z('l_feat_1', cols['l_feat_1'])
            - 0.15 * _z('feat_2', cols['feat_2'])
            + 0.35 * np.minimum(seq_match, 3)
            + self.act[a] + self.act_inv[inv, a] + self.act_age[age, a])

  def conversion_logit(self, cols: Dict[str, np.ndarray]) -> np.ndarray:
    """The true logit of P(converted | clicked) of rows ``cols``."""
    ad = cols['ad_id']
    adv = self.campaign_advertiser[self.ad_campaign[ad]]
    return (BASE_CVR_LOGIT + 0.5 * self.v_adv[adv]
            + 0.3 * _z('history_3', cols['history_3'])
            + self.ca[self.ad_category[ad], cols['age_group']]
            + 0.4 * ((cols['gender'] == 1) & (cols['hour'] >= 18)))

  def logging_policy(self, cols: Dict[str, np.ndarray], epsilon: float = 0.1,
                     temperature: float = 2.0) -> np.ndarray:
    """The logging policy's action distribution, shape (rows, N_ACTIONS)."""
    s = temperature * (self.log_pref[cols['inventory_id']]
                       + 0.5 * self.act_age[cols['age_group']])
    s = np.exp(s - s.max(axis=1, keepdims=True))
    return (1 - epsilon) * s / s.sum(axis=1, keepdims=True) + epsilon / N_ACTIONS


def sequence_match(seq_tokens: np.ndarray, seq_offsets: np.ndarray,
                   category: np.ndarray) -> np.ndarray:
  """Per row, how many tokens of its sequence equal ``category`` of that row."""
  lengths = np.diff(seq_offsets)
  hits = (seq_tokens == np.repeat(category, lengths)).astype(np.int64)
  out = np.zeros(len(lengths), np.int64)
  nonempty = lengths > 0
  out[nonempty] = np.add.reduceat(hits, seq_offsets[:-1][nonempty]) if hits.size else 0
  return out


def parse_seq(seq: Sequence[Optional[str]]):
  """Splits ``seq`` strings ("12 7 40"; empty or None for no history) into flat int
  tokens and row offsets, the form :func:`sequence_match` takes."""
  cells = [c or '' for c in seq]
  lengths = np.fromiter((len(c.split()) for c in cells), np.int64, len(cells))
  tokens = np.array(' '.join(c for c in cells if c).split(), dtype=np.int64)
  return tokens, np.concatenate([[0], np.cumsum(lengths)])


def generate(n: int, seed: int = 0, spurious: bool = False, drift_at: float = 0.8,
             world: Optional[SyntheticWorld] = None) -> pa.Table:
  """Draws ``n`` impressions from the world of ``seed``; deterministic in (n, seed).

  Args:
    n: number of rows (> 0).
    seed: seeds both the world and the rows.
    spurious: add the ``spurious`` column (label leak before ``drift_at``, noise after).
    drift_at: fraction of rows, in time order, after which ``spurious`` stops tracking
      the label.
    world: a prebuilt world for ``seed`` (saves its construction).
  Returns:
    A ``pyarrow.Table`` in time order with the columns described in the module doc.
  """
  if n <= 0:
    raise ValueError(f'n must be positive, got {n}')
  if not 0.0 <= drift_at <= 1.0:
    raise ValueError(f'drift_at must be in [0, 1], got {drift_at}')
  w = world if world is not None else SyntheticWorld(seed)
  rng = np.random.default_rng([seed, 2])
  cols: Dict[str, np.ndarray] = {}
  t = np.sort(rng.random(n)) * LOG_DAYS * 86400
  cols['event_time'] = t.astype(np.int64)
  cols['day_of_week'] = (cols['event_time'] // 86400) % 7
  cols['hour'] = (cols['event_time'] // 3600) % 24
  user = w.user_perm[np.searchsorted(w.user_cdf, rng.random(n))]
  ad = w.ad_perm[np.searchsorted(w.ad_cdf, rng.random(n))]
  cols['user_id'], cols['ad_id'] = user, ad
  cols['campaign_id'] = w.ad_campaign[ad]
  cols['ad_category'] = w.ad_category[ad]
  cols['advertiser_id'] = w.campaign_advertiser[cols['campaign_id']]
  cols['gender'], cols['age_group'] = w.user_gender[user], w.user_age[user]
  cols['inventory_id'] = rng.choice(N_INVENTORY, n, p=w.inventory_p)
  activity = w.user_activity[user]
  for name, (kind, mu, sigma) in DENSE_SPECS.items():
    # User-level counters share the user's activity, so they carry signal on u_bias.
    shift = 0.5 * activity if name.startswith(('l_feat', 'history')) else 0.0
    if name.startswith('history'):
      shift = shift + 0.3 * w.u_bias[user]
    x = np.expm1(mu + shift + sigma * np.sqrt(0.75 if np.ndim(shift) else 1.0)
                 * rng.standard_normal(n))
    cols[name] = np.floor(np.maximum(x, 0)) if kind == 'count' else np.round(
        np.maximum(x, 0), 2)
  # Behaviour sequence: 70% of tokens from the user's favourite categories.
  lengths = np.minimum(rng.poisson(6.0, n), MAX_SEQ_LEN)
  total = int(lengths.sum())
  row_of_token = np.repeat(np.arange(n), lengths)
  fav = w.user_fav[user[row_of_token], rng.integers(0, 3, total)]
  tokens = np.where(rng.random(total) < 0.7, fav, rng.integers(0, N_CATEGORIES, total))
  offsets = np.concatenate([[0], np.cumsum(lengths)])
  seq_match = sequence_match(tokens, offsets, w.ad_category[ad])
  # Logging policy.
  pi = w.logging_policy(cols)
  action = (rng.random(n)[:, None] > np.cumsum(pi, axis=1)).sum(axis=1)
  action = np.minimum(action, N_ACTIONS - 1)
  cols['action'] = action
  propensity = pi[np.arange(n), action]
  # Labels.
  click_logit = w.click_logit(cols, seq_match)
  ctr = _sigmoid(click_logit)
  cvr = _sigmoid(w.conversion_logit(cols))
  clicked = (rng.random(n) < ctr).astype(np.int64)
  converted = (clicked * (rng.random(n) < cvr)).astype(np.int64)
  market_price = np.round(np.exp(3.8 + w.inv_price[cols['inventory_id']]
                                 + 0.3 * (click_logit - BASE_CTR_LOGIT)
                                 + 0.4 * rng.standard_normal(n)), 2)

  seq = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()),
                                 pc.cast(pa.array(tokens, pa.int64()), pa.string()))
  out = {'event_time': cols['event_time']}
  for name in CATEGORICAL_COLUMNS:
    out[name] = cols[name]
  for name in DENSE_SPECS:
    out[name] = cols[name].astype(np.int64) if DENSE_SPECS[name][0] == 'count' else cols[name]
  out['seq'] = pc.binary_join(seq, ' ')
  if spurious:
    drift_row = int(round(drift_at * n))
    leak = clicked + rng.normal(0, 0.5, n)
    noise = rng.binomial(1, clicked.mean(), n) + rng.normal(0, 0.5, n)
    out['spurious'] = np.round(np.where(np.arange(n) < drift_row, leak, noise), 4)
  out['propensity'] = propensity
  out['market_price'] = market_price
  out['clicked'] = clicked
  out['converted'] = converted
  out['true_ctr'] = ctr
  out['true_cvr'] = cvr
  out['true_ctcvr'] = ctr * cvr
  return pa.table(out)


def table_columns(table: pa.Table) -> Dict[str, np.ndarray]:
  """The columns :meth:`SyntheticWorld.click_logit` needs, as NumPy arrays."""
  names = list(CATEGORICAL_COLUMNS) + list(DENSE_SPECS)
  return {c: table.column(c).to_numpy() for c in names}


def action_click_probabilities(table: pa.Table, world: SyntheticWorld) -> np.ndarray:
  """The true click probability of every row under every creative, (rows, N_ACTIONS):
  what a bandit choosing the creative would face."""
  cols = table_columns(table)
  tokens, offsets = parse_seq(table.column('seq').to_pylist())
  match = sequence_match(tokens, offsets, cols['ad_category'])
  logits = np.stack([world.click_logit(cols, match, action=np.full(table.num_rows, a))
                     for a in range(N_ACTIONS)], axis=1)
  return _sigmoid(logits)


def write_csv(table: pa.Table, path: str) -> None:
  """Writes ``table`` as CSV with a bare header row.

  PyArrow quotes header names, and TFX's CsvExampleGen would keep the quotes as part of
  the column names; so the header is written here and PyArrow writes the rows.
  """
  import pyarrow.csv as pacsv
  with open(path, 'wb') as f:
    f.write((','.join(table.column_names) + '\n').encode('utf-8'))
    pacsv.write_csv(table, f, write_options=pacsv.WriteOptions(include_header=False))


def write(table: pa.Table, out_dir: str, formats: Sequence[str] = ('csv',),
          shards: int = 1) -> Dict[str, str]:
  """Writes ``table`` as ``out_dir/<format>/data-<i>-of-<shards>.<ext>``.

  One folder per format, because ExampleGen reads every file of its input folder.
  Returns format -> folder.
  """
  import pyarrow.parquet as pq
  unknown = set(formats) - {'csv', 'parquet'}
  if unknown:
    raise ValueError(f'unknown format(s) {sorted(unknown)}; use csv and/or parquet')
  if shards < 1:
    raise ValueError(f'shards must be >= 1, got {shards}')
  folders = {}
  rows = table.num_rows
  for fmt in formats:
    folder = os.path.join(out_dir, fmt)
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):  # a rerun must not leave stale shards behind
      if old.startswith('data-'):
        os.remove(os.path.join(folder, old))
    for i in range(shards):
      part = table.slice(i * rows // shards, (i + 1) * rows // shards - i * rows // shards)
      path = os.path.join(folder, f'data-{i:05d}-of-{shards:05d}.{fmt}')
      if fmt == 'csv':
        write_csv(part, path)
      else:
        pq.write_table(part, path)
    folders[fmt] = folder
  return folders
