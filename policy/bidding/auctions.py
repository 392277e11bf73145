"""Auction logs for replay: second-price auctions whose market price and click are known.

An :class:`Auctions` holds E episodes of up to T auctions as (E, T) arrays, padded; the
``valid`` mask marks the real ones (a log's last episode may be short). Episodes are the
unit of a budget: each starts with a fresh one, as in the RLB paper's setting.

Sources:

* :func:`read_ipinyou`: the RLB paper's iPinYou files (``../shared/data/ipinyou_rlbdp``).
  Line 1 is ``<feature dimension>\\t<T>``; then per episode a line with its id alone,
  followed by its auctions, one per line: ``click<TAB>market_price<TAB>pCTR``.
* :func:`from_generated`: the project's generated impressions (``datagen.synthetic``),
  whose ``market_price`` column is the auction's second price and whose pCTR comes from a
  model (:mod:`policy.bidding.closed_loop`) or from the truth.

Every reader checks what it reads and raises :class:`AuctionDataError` with the file and
line number of the first bad line: a malformed line, a negative price, a pCTR outside
[0, 1], a click that is not 0 or 1.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np


class AuctionDataError(ValueError):
  """Bad auction data or bad budget arguments; the message says where and why."""


@dataclasses.dataclass
class Auctions:
  click: np.ndarray          # (E, T) int8: the click the impression got if won
  price: np.ndarray          # (E, T) float64: market price (the second price to beat)
  pctr: np.ndarray           # (E, T) float64: predicted click probability
  valid: np.ndarray          # (E, T) bool: a real auction, not padding
  name: str = ''

  def __post_init__(self):
    check(self.click, self.price, self.pctr, self.valid, self.name or 'auctions')

  @property
  def episodes(self) -> int:
    return self.price.shape[0]

  @property
  def horizon(self) -> int:
    return self.price.shape[1]

  @property
  def count(self) -> int:
    return int(self.valid.sum())

  def mean_price(self) -> float:
    return float(self.price[self.valid].mean())

  def mean_ctr(self) -> float:
    return float(self.click[self.valid].mean())

  def take(self, episodes) -> 'Auctions':
    """The episodes ``episodes`` (indices or a slice) as a new log."""
    return Auctions(self.click[episodes], self.price[episodes], self.pctr[episodes],
                    self.valid[episodes], self.name)

  def tile(self, episodes: int) -> 'Auctions':
    """The log repeated to ``episodes`` episodes (for speed measurements)."""
    idx = np.arange(episodes) % self.episodes
    return self.take(idx)


def check(click, price, pctr, valid, where: str) -> None:
  """Raises AuctionDataError naming the first bad auction (episode, position)."""
  shapes = {np.shape(a) for a in (click, price, pctr, valid)}
  if len(shapes) != 1 or len(next(iter(shapes))) != 2:
    raise AuctionDataError(f'{where}: click, price, pctr and valid must be (E, T) arrays '
                           f'of one shape, got {sorted(shapes)}')
  for name, bad in (('negative or non-finite market price',
                     valid & ~(np.isfinite(price) & (price >= 0))),
                    ('pCTR outside [0, 1]', valid & ~((pctr >= 0) & (pctr <= 1))),
                    ('click not 0 or 1', valid & ~np.isin(click, (0, 1)))):
    if bad.any():
      e, t = np.argwhere(bad)[0]
      raise AuctionDataError(f'{where}: {int(bad.sum())} auctions with a {name}; the '
                             f'first is episode {e}, auction {t}')


def _pad(episodes, horizon: int):
  e = len(episodes)
  click = np.zeros((e, horizon), np.int8)
  price = np.zeros((e, horizon))
  pctr = np.zeros((e, horizon))
  valid = np.zeros((e, horizon), bool)
  for i, (c, p, q) in enumerate(episodes):
    n = len(c)
    click[i, :n], price[i, :n], pctr[i, :n], valid[i, :n] = c, p, q, True
  return click, price, pctr, valid


def read_ipinyou(path: str) -> Auctions:
  """One RLB-format file (``<camp>.validation.txt``, ``2997.test.txt``) as episodes."""
  if not os.path.isfile(path):
    raise AuctionDataError(f'{path}: no such file')
  with open(path) as f:
    lines = f.read().splitlines()
  while lines and not lines[-1].strip():      # trailing blank lines end the file
    lines.pop()
  if not lines:
    raise AuctionDataError(f'{path}: empty file')
  head = lines[0].split()
  if len(head) != 2 or not all(h.isdigit() for h in head) or int(head[1]) <= 0:
    raise AuctionDataError(f'{path}:1: expected "<dimension>\\t<episode length>", got '
                           f'{lines[0]!r}')
  horizon = int(head[1])
  episodes = []
  start = None  # line index of the current episode's first auction
  bounds = []
  for i in range(1, len(lines)):
    # An episode id line is one token; a blank line inside the file is a malformed auction.
    if lines[i].strip() and '\t' not in lines[i] and ' ' not in lines[i].strip():
      if start is not None:
        bounds.append((start, i))
      start = i + 1
  if start is None:
    raise AuctionDataError(f'{path}:2: expected an episode id line, found none')
  bounds.append((start, len(lines)))
  if bounds[0][0] != 2:
    raise AuctionDataError(f'{path}:2: expected an episode id line, got {lines[1]!r}')
  for a, b in bounds:
    if b - a > horizon:
      raise AuctionDataError(f'{path}:{a}: episode has {b - a} auctions, more than the '
                             f'header\'s episode length {horizon}')
    rows = [lines[j].split('\t') for j in range(a, b)]
    bad = next((j for j, r in enumerate(rows) if len(r) != 3), None)
    try:
      arr = np.array(rows, dtype=np.float64) if bad is None and rows else np.zeros((0, 3))
    except ValueError:
      bad = next(j for j, r in enumerate(rows) if not _floats(r))
    if bad is not None:
      raise AuctionDataError(f'{path}:{a + bad + 1}: malformed auction line '
                             f'{lines[a + bad]!r}; expected click<TAB>market_price<TAB>pCTR')
    for col, name, ok in ((0, 'click not 0 or 1', lambda v: (v == 0) | (v == 1)),
                          (1, 'negative market price', lambda v: np.isfinite(v) & (v >= 0)),
                          (2, 'pCTR outside [0, 1]', lambda v: (v >= 0) & (v <= 1))):
      wrong = np.flatnonzero(~ok(arr[:, col]))
      if wrong.size:
        j = int(wrong[0])
        raise AuctionDataError(f'{path}:{a + j + 1}: {name} in {lines[a + j]!r}')
    episodes.append((arr[:, 0], arr[:, 1], arr[:, 2]))
  name = os.path.basename(path).split('.')[0]
  return Auctions(*_pad(episodes, horizon), name=name)


def _floats(row) -> bool:
  try:
    [float(v) for v in row]
    return True
  except ValueError:
    return False


@dataclasses.dataclass(frozen=True)
class Campaign:
  """What the training period says about a campaign: RLB's budget base and Lin's CTR."""
  name: str
  mean_price: float        # cost_train / imp_train: the average market price
  ctr: float               # clk_train / imp_train
  ecpc: float              # cost_train / clk_train: the historical cost per click


def campaign_info(data_dir: str, campaign: str) -> Campaign:
  """``info/<campaign>.info.json`` of the RLB data folder."""
  path = os.path.join(data_dir, 'info', f'{campaign}.info.json')
  if not os.path.isfile(path):
    raise AuctionDataError(f'{path}: no such file (is {campaign!r} an iPinYou campaign '
                           f'of {data_dir}?)')
  with open(path) as f:
    d = json.load(f)
  cost, imp, clk = d['cost_train'], d['imp_train'], d['clk_train']
  return Campaign(campaign, cost / imp, clk / imp, cost / max(clk, 1))


def ipinyou_campaigns(data_dir: str) -> list:
  """Campaign ids that have a validation file."""
  folder = os.path.join(data_dir, 'validation')
  return sorted(f.split('.')[0] for f in os.listdir(folder) if f.endswith('.validation.txt'))


def ipinyou_split(data_dir: str, campaign: str, split: str) -> Auctions:
  """``validation`` (every campaign) or ``test`` (2997 only) of the RLB data folder."""
  sub = {'validation': 'validation', 'test': 'test'}[split]
  return read_ipinyou(os.path.join(data_dir, sub, f'{campaign}.{split}.txt'))


def budget(c0: float, horizon: int, mean_price: float) -> float:
  """The RLB setting's budget per episode: c0 * T * the campaign's average market price,
  rounded down to a whole price unit as the paper's code does."""
  if not c0 > 0 or not np.isfinite(c0):
    raise AuctionDataError(f'budget ratio c0 must be > 0, got {c0}')
  b = float(int(c0 * horizon * mean_price))
  if b <= 0:
    raise AuctionDataError(f'budget c0 * T * mean price = {c0} * {horizon} * {mean_price} '
                           f'is {b}: it must be > 0')
  return b


def parse_ratio(text: str) -> float:
  """``1/16``, ``0.0625`` -> 0.0625; AuctionDataError on anything else."""
  try:
    if '/' in text:
      a, b = text.split('/')
      return float(a) / float(b)
    return float(text)
  except (ValueError, ZeroDivisionError):
    raise AuctionDataError(f'not a ratio: {text!r} (write 1/16 or 0.0625)') from None


def from_generated(table, pctr: np.ndarray, horizon: int, name: str = 'generated'
                   ) -> Auctions:
  """Generated impressions (in time order) cut into episodes of ``horizon`` auctions;
  the click is the row's ``clicked``, the price its ``market_price``."""
  n = table.num_rows
  if len(pctr) != n:
    raise AuctionDataError(f'{len(pctr)} pCTRs for {n} auctions')
  e = -(-n // horizon)
  pad = e * horizon - n

  def shape(a, dtype):
    return np.concatenate([np.asarray(a, dtype), np.zeros(pad, dtype)]).reshape(e, horizon)

  valid = shape(np.ones(n, bool), bool)
  return Auctions(shape(table.column('clicked').to_numpy(), np.int8),
                  shape(table.column('market_price').to_numpy(), np.float64),
                  shape(pctr, np.float64), valid, name)
