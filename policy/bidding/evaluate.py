"""The replay experiment of one campaign at one budget ratio: tune on validation, replay
the test episodes, table every policy beside the hindsight optimum.

Splits (the RLB data): campaign 2997 has a test file, and is tuned on its validation
file; every other campaign has only a validation file (100 episodes), so it is tuned on
the first half and tested on the second.

Policies: ``constant``, ``lin``, ``lagrangian`` (dual-step pacer), ``pid`` (PID pacer),
``lagrangian+ts`` (the dual pacer with Thompson-sampling calibration,
:class:`policy.bandit.thompson.CalibrationTS`), ``hindsight`` (the upper bound) and, on
request, ``rlb`` (our implementation of the RLB paper's dynamic programme,
:mod:`policy.bidding.rlb`; seconds to minutes per budget).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from policy.bidding import auctions as auc
from policy.bidding import hindsight, tuning
from policy.bidding.replay import Outcome, replay

POLICIES = ('constant', 'lin', 'lagrangian', 'pid', 'lagrangian+ts', 'rlb', 'hindsight')
DEFAULT_POLICIES = tuple(p for p in POLICIES if p != 'rlb')
C0S = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2)
PCTR_CALIBRATIONS = ('none', 'platt', 'isotonic')


def splits(data_dir: str, campaign: str) -> Tuple[auc.Auctions, auc.Auctions, str]:
  """(tuning episodes, test episodes, a note saying which is which)."""
  val = auc.ipinyou_split(data_dir, campaign, 'validation')
  if os.path.isfile(os.path.join(data_dir, 'test', f'{campaign}.test.txt')):
    return val, auc.ipinyou_split(data_dir, campaign, 'test'), 'validation -> test'
  h = val.episodes // 2
  return (val.take(slice(0, h)), val.take(slice(h, val.episodes)),
          f'validation episodes 0-{h - 1} -> {h}-{val.episodes - 1}')


def pctr_calibrator(val: auc.Auctions, method: str):
  """The calibration ``method`` (one of :data:`PCTR_CALIBRATIONS`) fitted on the pCTRs and
  clicks of ``val``'s auctions: a :class:`trainer.layers.calibration.Calibrator` taking
  logits, or None for ``none``."""
  if method not in PCTR_CALIBRATIONS:
    raise ValueError(f'unknown pCTR calibration {method!r}; choose from {PCTR_CALIBRATIONS}')
  if method == 'none':
    return None
  from trainer.layers.calibration import logit, make_calibrator
  if not val.click[val.valid].any():
    raise ValueError(f'{val.name}: no clicks in the tuning episodes to calibrate on')
  return make_calibrator(method).fit(logit(val.pctr[val.valid]), val.click[val.valid])


def calibrated(a: auc.Auctions, calibrator) -> auc.Auctions:
  """``a`` with every pCTR mapped through ``calibrator`` (``a`` itself for None)."""
  if calibrator is None:
    return a
  from trainer.layers.calibration import logit
  pctr = np.where(a.valid, np.clip(calibrator.predict(logit(a.pctr)), 0.0, 1.0), 0.0)
  return auc.Auctions(a.click, a.price, pctr, a.valid, a.name)


def recalibrate(val: auc.Auctions, test: auc.Auctions, method: str = 'none'
                ) -> Tuple[auc.Auctions, auc.Auctions]:
  """(val, test) with every pCTR replaced by its calibrated click probability, the
  calibration fitted on the clicks of ``val`` (the tuning episodes) alone.

  ``platt`` fits ``sigmoid(a logit(pCTR) + b)``; ``isotonic`` a monotone step curve; both
  are the trainer's calibrators (:mod:`trainer.layers.calibration`). A multiplicative
  miscalibration does not change a pacer's choices (lambda absorbs it), but a slope
  a != 1 does: on the iPinYou campaigns' tuning episodes Platt fits slopes from 0.46 to
  1.73 (``python -m bench.bidding --parts calibration``). Every policy, the hindsight
  optimum included, then sees the calibrated pCTRs. ``none`` returns the logs as they
  are."""
  cal = pctr_calibrator(val, method)
  return calibrated(val, cal), calibrated(test, cal)


def bidders(val: auc.Auctions, budget: float, info: auc.Campaign, policies: Sequence[str],
            seed: int = 0, data_dir: Optional[str] = None, carry: bool = True,
            **pacer) -> Dict[str, object]:
  """Each named policy tuned on ``val`` (hindsight needs no tuning and is left out;
  ``rlb`` needs ``data_dir`` for the campaign's training price histogram). The pacers
  are tuned with a fixed start and replayed with ``carry`` (their start learnt across
  the test episodes, :class:`policy.bidding.bidders.LagrangianBid`)."""
  from policy.bandit.thompson import CalibrationTS
  out = {}
  if 'rlb' in policies:
    from policy.bidding import rlb
    if data_dir is None:
      raise ValueError('rlb needs the data folder (its training price histogram)')
    out['rlb'] = rlb.RLBBid.fit(val.horizon, budget, rlb.price_pmf(data_dir, info.name),
                                info.ctr)
  if 'constant' in policies:
    out['constant'] = tuning.tune_constant(val, budget)
  if 'lin' in policies:
    out['lin'] = tuning.tune_linear(val, budget, info.ctr)
  if 'lagrangian' in policies or 'lagrangian+ts' in policies:
    dual = dataclasses.replace(tuning.tune_lagrangian(val, budget, info.ecpc, 'dual', **pacer),
                               carry=carry)
    if 'lagrangian' in policies:
      out['lagrangian'] = dual
    if 'lagrangian+ts' in policies:
      out['lagrangian+ts'] = dataclasses.replace(
          dual, calibration=CalibrationTS.from_quantiles(val.pctr[val.valid], 10, seed=seed))
  if 'pid' in policies:
    out['pid'] = dataclasses.replace(tuning.tune_lagrangian(val, budget, info.ecpc, 'pid',
                                                            **pacer), carry=carry)
  return out


def run(val: auc.Auctions, test: auc.Auctions, info: auc.Campaign, c0: float,
        policies: Sequence[str] = DEFAULT_POLICIES, trace: bool = False, seed: int = 0,
        data_dir: Optional[str] = None, carry: bool = True,
        **pacer) -> Tuple[List[dict], Dict[str, Outcome]]:
  """Rows of the table (one per policy) and, with ``trace``, each policy's Outcome."""
  unknown = set(policies) - set(POLICIES)
  if unknown:
    raise ValueError(f'unknown policies {sorted(unknown)}; choose from {POLICIES}')
  budget = auc.budget(c0, test.horizon, info.mean_price)
  h = hindsight.optimum(test, budget)
  rows, outcomes = [], {}
  for name, b in bidders(val, budget, info, policies, seed, data_dir, carry,
                         **pacer).items():
    o = replay(test, b, budget, trace=trace)
    outcomes[name] = o
    rows.append(dict(policy=name, **o.totals()))
  if 'hindsight' in policies:
    clicks, cost, wins = h.clicks.sum(), h.cost.sum(), h.wins.sum()
    rows.append({'policy': 'hindsight', 'auctions': float(test.count), 'impressions': wins,
                 'clicks': float(clicks), 'expected_clicks': float(h.expected_clicks.sum()),
                 'cost': float(cost), 'budget': budget * test.episodes,
                 'win_rate': wins / test.count, 'ecpc': cost / 1000 / clicks if clicks else np.nan,
                 'cpm': cost / wins if wins else np.nan, 'overspent_episodes': 0})
  rows.sort(key=lambda r: POLICIES.index(r['policy']))
  best = float(h.expected_clicks.sum())
  best_clicks = float(h.clicks.sum())
  for r in rows:
    r.update(campaign=info.name, c0=c0, budget_per_episode=budget,
             of_hindsight=r['expected_clicks'] / best if best else np.nan,
             of_hindsight_clicks=r['clicks'] / best_clicks if best_clicks else np.nan)
  return rows, outcomes


def rlb_reference(data_dir: str, campaign: str = '2997') -> List[dict]:
  """The RLB paper's result rows for ``campaign``, read from the data folder's
  UPSTREAM_README.md (T = 1000, c0 = 1/32 there); [] when the file is absent."""
  path = os.path.join(data_dir, 'UPSTREAM_README.md')
  if not os.path.isfile(path):
    return []
  rows = []
  pat = re.compile(r'camp=(\d+), algo=(\w+), N=(\d+), c0=([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+'
                   r'(\d+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)\s+([\d.]+)')
  with open(path) as f:
    for line in f:
      m = pat.search(line)
      if m and m.group(1) == campaign:
        rows.append({'policy': f'RLB paper: {m.group(2)}', 'campaign': campaign,
                     'c0': float(m.group(4)), 'auctions': float(m.group(6)),
                     'impressions': float(m.group(7)), 'clicks': float(m.group(8)),
                     'cost': float(m.group(9)), 'win_rate': float(m.group(10)) / 100,
                     'cpm': float(m.group(11)), 'ecpc': float(m.group(12))})
  return rows


COLUMNS = (('policy', '{}'), ('clicks', '{:.0f}'), ('expected_clicks', '{:.1f}'),
           ('of_hindsight', '{:.1%}'), ('cost', '{:.0f}'), ('win_rate', '{:.2%}'),
           ('ecpc', '{:.2f}'), ('cpm', '{:.2f}'), ('overspent_episodes', '{}'))


def table(rows: List[dict], markdown: bool = False) -> str:
  def cell(r, k, fmt):
    v = r.get(k)
    if v is None or (isinstance(v, float) and np.isnan(v)):
      return '-'
    return fmt.format(v)
  head = [k for k, _ in COLUMNS]
  body = [[cell(r, k, f) for k, f in COLUMNS] for r in rows]
  if markdown:
    return '\n'.join(['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
                     + ['| ' + ' | '.join(b) + ' |' for b in body])
  widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
  fmt = lambda cells: '  '.join(c.rjust(w) if i else c.ljust(w)  # noqa: E731
                                for i, (c, w) in enumerate(zip(cells, widths)))
  return '\n'.join([fmt(head)] + [fmt(b) for b in body])


def plot(outcomes: Dict[str, Outcome], out_dir: str, title: str) -> List[str]:
  """PNGs: cumulative spend against the ideal pace, lambda over time, clicks won."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  figs = {'spend': 'cumulative spend / budget (mean over episodes)',
          'multiplier': 'lambda (median over episodes)',
          'clicks': 'cumulative clicks won (sum over episodes)'}
  for key, ylabel in figs.items():
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, o in outcomes.items():
      if o.spend is None:
        continue
      t = np.arange(1, o.spend.shape[1] + 1)
      if key == 'spend':
        ax.plot(t, np.mean(o.spend / o.budget[:, None], axis=0), label=name)
      elif key == 'multiplier':
        if np.all(np.isnan(o.multiplier)):
          continue
        ax.plot(t, np.nanmedian(o.multiplier, axis=0), label=name)
      else:
        ax.plot(t, o.won_clicks.sum(axis=0), label=name)
    if key == 'spend':
      n = next(iter(outcomes.values())).spend.shape[1]
      ax.plot([0, n], [0, 1], 'k--', lw=1, label='ideal pace')
    ax.set_xlabel('auction in episode')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, f'{key}.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths
