"""``python -m policy bid-sim``: replay a budget-constrained bidder on iPinYou auctions, or
run it closed-loop on generated auctions scored by a served model.

    python -m policy bid-sim --campaign 2997 --c0 1/16 --policy lagrangian --out bid-2997
    python -m policy bid-sim --campaign all --c0 1/32 --policy all
    python -m policy bid-sim --server 127.0.0.1:8500 --model ctr --c0 1/16

It prints the table (clicks, cost, win rate, eCPC, CPM; constant, Lin and the hindsight
optimum always beside the chosen policy; ``--policy rlb`` adds our run of the RLB paper's
dynamic programme beside the dual pacer, seconds to a minute per budget) and, with
``--out``, saves PNG plots of cumulative spend against the ideal pace, lambda over time
and clicks won, and the rows as JSON. Errors (a budget <= 0, negative prices, a pCTR
outside [0, 1], a malformed log line, with its line number) exit 2 with the message.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), '..', 'shared', 'data', 'ipinyou_rlbdp')
CHOICES = ('lagrangian', 'pid', 'lagrangian+ts', 'constant', 'lin', 'rlb', 'all')


def parser() -> argparse.ArgumentParser:
  from policy.bidding.evaluate import PCTR_CALIBRATIONS
  p = argparse.ArgumentParser(prog='python -m policy bid-sim', description=__doc__.split(
      '\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--campaign', default='2997',
                 help='iPinYou campaign id, or "all" (default 2997)')
  p.add_argument('--c0', default='1/16',
                 help='budget ratio: budget per episode = c0 * T * mean market price '
                      '(1/32 ... 1/2; default 1/16)')
  p.add_argument('--policy', default='lagrangian', choices=CHOICES)
  p.add_argument('--data', default=os.path.normpath(DEFAULT_DATA),
                 help='the RLB iPinYou folder (default ../shared/data/ipinyou_rlbdp)')
  p.add_argument('--max-cpc', type=float, help='cap on the expected cost per click '
                 '(price units per click, like the log\'s prices)')
  p.add_argument('--min-roi', type=float, help='floor on value / cost, value = the '
                 'campaign\'s historical cost per click times the clicks')
  p.add_argument('--objective', choices=('clicks', 'surplus'), default='clicks')
  p.add_argument('--pctr-calibration', choices=PCTR_CALIBRATIONS, default='none',
                 help='recalibrate the logs\' pCTRs on the tuning episodes\' clicks before '
                      'every policy sees them (default none; docs/BIDDING.md)')
  p.add_argument('--out', help='folder for the PNG plots and results.json')
  p.add_argument('--seed', type=int, default=0)
  loop = p.add_argument_group('closed loop (generated auctions, pCTR from a served model)')
  loop.add_argument('--server', help='host:port of a TF Serving gRPC endpoint; runs the '
                    'closed loop (the dual pacer, or PID with --policy pid) instead of the '
                    'iPinYou replay')
  loop.add_argument('--model', default='ctr', help='served model name (default ctr)')
  loop.add_argument('--rows', type=int, default=20_000,
                    help='generated impressions, half history, half live (default 20000)')
  return p


def _policies(choice: str) -> List[str]:
  if choice == 'all':
    return ['constant', 'lin', 'lagrangian', 'pid', 'lagrangian+ts', 'hindsight']
  if choice == 'rlb':       # the paper's method beside our pacer
    return ['constant', 'lin', 'lagrangian', 'rlb', 'hindsight']
  return list(dict.fromkeys(['constant', 'lin', choice, 'hindsight']))


def _closed_loop(args, c0: float) -> int:
  from policy.bidding import closed_loop
  from policy.bidding.evaluate import table
  from serving.client import PredictionClient
  # The loop runs a pacer: pid for --policy pid, the dual-step one otherwise.
  pacing = 'pid' if args.policy == 'pid' else 'dual'
  name = 'pid' if pacing == 'pid' else 'lagrangian'
  with PredictionClient(args.server, args.model) as client:
    res = closed_loop.run(client, rows=args.rows, c0=c0, seed=args.seed, pacing=pacing)
  d = res.totals()
  h = {'policy': 'hindsight', 'clicks': d['hindsight_clicks'],
       'expected_clicks': d['hindsight_expected_clicks']}
  row = dict(policy=f'{name} (closed loop)', **d,
             of_hindsight=d['expected_clicks'] / d['hindsight_expected_clicks'])
  print(f'closed loop: {int(d["auctions"])} live auctions, {d["requests"]} Predict requests '
        f'to {args.server} ({args.model}), budget {res.budget:.0f} per episode, '
        f'{d["seconds"]:.1f} s')
  print(table([row, h]))
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    from policy.bidding.evaluate import plot
    plot({name: res.outcome}, args.out, f'closed loop, c0={args.c0}')
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
      json.dump([row], f, indent=2, default=float)
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  args = parser().parse_args(argv)
  from policy.bidding import auctions as auc
  from policy.bidding import evaluate
  try:
    c0 = auc.parse_ratio(args.c0)
    if not c0 > 0:
      raise auc.AuctionDataError(f'budget ratio c0 must be > 0, got {args.c0}')
    if args.server:
      if args.pctr_calibration != 'none':
        raise ValueError('--pctr-calibration recalibrates the iPinYou logs\' pCTRs; a served '
                         'model\'s probabilities come calibrated by its own head')
      return _closed_loop(args, c0)
    if not os.path.isdir(args.data):
      raise auc.AuctionDataError(f'{args.data}: no such folder (give --data)')
    campaigns = (auc.ipinyou_campaigns(args.data) if args.campaign == 'all'
                 else [args.campaign])
    pacer = {'objective': args.objective, 'max_cpc': args.max_cpc, 'min_roi': args.min_roi}
    all_rows = []
    for camp in campaigns:
      info = auc.campaign_info(args.data, camp)
      val, test, note = evaluate.splits(args.data, camp)
      val, test = evaluate.recalibrate(val, test, args.pctr_calibration)
      rows, outcomes = evaluate.run(val, test, info, c0, _policies(args.policy),
                                    trace=bool(args.out), seed=args.seed, data_dir=args.data,
                                    **pacer)
      print(f'\ncampaign {camp}, c0 = {args.c0}, T = {test.horizon}, budget '
            f'{rows[0]["budget_per_episode"]:.0f} per episode, {test.episodes} test episodes '
            f'({note})')
      ref = [r for r in evaluate.rlb_reference(args.data, camp) if abs(r['c0'] - c0) < 1e-9]
      print(evaluate.table(rows + ref))
      all_rows += rows + ref
      if args.out:
        out = os.path.join(args.out, camp) if len(campaigns) > 1 else args.out
        paths = evaluate.plot(outcomes, out, f'campaign {camp}, c0 = {args.c0}')
        print('plots: ' + ', '.join(paths))
  except (auc.AuctionDataError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
      json.dump(all_rows, f, indent=2, default=float)
  return 0


if __name__ == '__main__':
  sys.exit(main())
