"""The bidder on live pCTRs: generated auctions, scored by the served model over TF
Serving's gRPC API, paced in order, with the spend tracked.

A bounded simulation that shows the pieces fit:

1. ``rows`` generated impressions (``datagen.synthetic``, with their ``market_price``),
   in time order; the first half is history, the second half the live stream.
2. The history is scored in large batches through the server and fixes the budget
   (c0 * T * its mean market price), the value of a click (its cost per click) and the
   pacer's start and step (:mod:`policy.bidding.tuning`).
3. The live stream is read in requests of ``request_size`` impressions: each request's
   pCTRs come back from the server, then the pacer bids on those auctions one by one
   (each bid depends on the spend so far), and so on, episode after episode.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Dict

import numpy as np

from policy.bidding import auctions as auc
from policy.bidding import hindsight, tuning
from policy.bidding.replay import Outcome, auction
from serving import signatures as sig

def served_pctr(client, table, request_size: int = 500) -> np.ndarray:
  """``probability`` of every row of ``table`` from the server, ``request_size`` rows per
  Predict call, sent as serialized ``tf.Example``s of the default spec's features (the
  spec of the generated data; an empty ``seq`` stays an empty string, not a missing
  feature)."""
  from transform import local
  spec = _default_spec()
  out = []
  for lo in range(0, table.num_rows, request_size):
    examples = local.serialize_examples(table.slice(lo, request_size), spec)
    out.append(np.asarray(client.predict(examples)[sig.PROBABILITY], np.float64).reshape(-1))
  return np.concatenate(out)


def _default_spec():
  import os
  from transform import feature_spec as fs
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return fs.load(os.path.join(root, 'specs', 'default.yaml'))


@dataclasses.dataclass
class LoopResult:
  outcome: Outcome
  hindsight: hindsight.Hindsight
  budget: float
  value: float
  requests: int
  seconds: float

  def totals(self) -> Dict[str, float]:
    d = self.outcome.totals()
    d.update(hindsight_expected_clicks=float(self.hindsight.expected_clicks.sum()),
             hindsight_clicks=float(self.hindsight.clicks.sum()), requests=self.requests,
             seconds=self.seconds)
    return d


def run(client, rows: int = 20_000, c0: float = 1 / 16, horizon: int = 1000,
        seed: int = 3, request_size: int = 250, pacing: str = 'dual') -> LoopResult:
  """Runs the loop against ``client`` (a :class:`serving.client.PredictionClient`)."""
  from datagen import synthetic
  if rows < 4 * horizon:
    raise ValueError(f'rows must be at least 4 episodes ({4 * horizon}), got {rows}')
  table = synthetic.generate(rows, seed=seed)
  half = (rows // 2 // horizon) * horizon
  history, live = table.slice(0, half), table.slice(half)
  val = auc.from_generated(history, served_pctr(client, history, 4 * request_size), horizon,
                           'history')
  budget = auc.budget(c0, horizon, val.mean_price())
  value = float(val.price[val.valid].sum() / max(val.click[val.valid].sum(), 1))
  bidder = tuning.tune_lagrangian(val, budget, value, pacing)

  start = time.perf_counter()
  n = live.num_rows
  e = -(-n // horizon)
  clicks, expected, cost, wins = (np.zeros(e) for _ in range(4))
  spend = np.zeros((e, horizon))
  lam = np.full((e, horizon), np.nan)
  cum = np.zeros((e, horizon))
  pctr_all = np.zeros(n)
  requests = 0
  price_all = live.column('market_price').to_numpy()
  click_all = live.column('clicked').to_numpy()
  for ep in range(e):
    lo, hi = ep * horizon, min((ep + 1) * horizon, n)
    state = bidder.start(1, horizon, np.array([budget]))
    remaining = np.array([budget])
    for r0 in range(lo, hi, request_size):
      r1 = min(r0 + request_size, hi)
      pctr = served_pctr(client, live.slice(r0, r1 - r0), request_size)
      requests += 1
      pctr_all[r0:r1] = pctr
      for i in range(r0, r1):
        t = i - lo
        p = pctr[i - r0:i - r0 + 1]
        won, c = auction(bidder, state, t, p, price_all[i], click_all[i:i + 1], remaining)
        remaining = remaining - c
        clicks[ep] += won[0] * click_all[i]
        expected[ep] += won[0] * p[0]
        wins[ep] += won[0]
        spend[ep, t] = budget - remaining[0]
        lam[ep, t] = bidder.multiplier(state)[0]
        cum[ep, t] = clicks[ep]
    cost[ep] = budget - remaining[0]
  seconds = time.perf_counter() - start
  live_auctions = auc.from_generated(live, pctr_all, horizon, 'live')
  out = Outcome(clicks=clicks, expected_clicks=expected, cost=cost, wins=wins,
                auctions=live_auctions.valid.sum(axis=1).astype(float),
                budget=np.full(e, budget), spend=spend, multiplier=lam, won_clicks=cum)
  return LoopResult(out, hindsight.optimum(live_auctions, budget), budget, value, requests,
                    seconds)
