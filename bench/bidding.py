"""Budget-constrained bidding replayed on iPinYou, and its speed.

    python -m bench.bidding [--parts replay speed tuning calibration] [--no-docs]

* ``replay``: every campaign of ``../shared/data/ipinyou_rlbdp`` at c0 in {1/32, 1/16,
  1/8, 1/4, 1/2}, T = 1000: constant, Lin, the dual-step Lagrangian pacer, the PID pacer,
  the dual pacer with Thompson-sampling calibration, and the hindsight LP optimum
  (:mod:`policy.bidding.evaluate`: 2997 tuned on validation and tested on its test file,
  the others tuned on validation episodes 0-49 and tested on 50-99). On 2997 also RLB,
  our run of the paper's dynamic programme (:mod:`policy.bidding.rlb`), at every c0; the
  paper's own rows for 2997 (c0 = 1/32, the only budget its README reports) are read
  from the data folder and put beside ours.
* ``speed``: the dual pacer replayed over every auction of the folder (9 validation files
  and the 2997 test file, 1.06M auctions) at c0 = 1/16: reading and checking the files,
  then the replay; median of 3. Target: 1M auctions in under 10 s.
* ``tuning``: the evidence for the pacer's tuning rules: its step chosen by realised
  against expected clicks, and its start fixed against carried across episodes, on the
  campaigns without a test file (held-out halves) and, for the start, on 2997's test file.
* ``calibration``: the dual pacer (carried start) on the logs' pCTRs as they are against
  recalibrated on the tuning episodes' clicks (``evaluate.recalibrate``: Platt, isotonic),
  realised clicks summed over the budgets, with the paired standard error of each
  difference over episodes: the held-out halves of the 8 campaigns, and 2997's test file.

Results: ``bench/results/bidding.json`` and the ``bench.bidding`` block of docs/BENCHMARKS.md.
"""
import argparse
import os
import time

import numpy as np

from bench.common import machine, write_docs_block, write_results
from policy.bidding import auctions as auc
from policy.bidding import evaluate
from policy.bidding.replay import replay

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, '..', 'shared', 'data', 'ipinyou_rlbdp')
TARGET_S = 10.0
C0_NAMES = {1 / 32: '1/32', 1 / 16: '1/16', 1 / 8: '1/8', 1 / 4: '1/4', 1 / 2: '1/2'}


def _row(dataset, policy, metric, value, unit='', **extra):
  return dict(dataset=dataset, policy=policy, metric=metric, value=float(value), unit=unit,
              **extra)


def replay_tables():
  results, tables = [], []
  for camp in auc.ipinyou_campaigns(DATA):
    info = auc.campaign_info(DATA, camp)
    val, test, note = evaluate.splits(DATA, camp)
    # RLB (our run of the paper's dynamic programme) where the paper has a test file.
    policies = evaluate.POLICIES if camp == '2997' else evaluate.DEFAULT_POLICIES
    for c0 in evaluate.C0S:
      rows, outcomes = evaluate.run(val, test, info, c0, policies, data_dir=DATA)
      if 'rlb' in outcomes:
        # Paired over episodes: the standard error of the pacer's lead over RLB.
        by = {r['policy']: r for r in rows}
        for key, field in (('clicks', 'paired_se_vs_rlb'),
                           ('expected_clicks', 'paired_se_vs_rlb_expected')):
          d = getattr(outcomes['lagrangian'], key) - getattr(outcomes['rlb'], key)
          by['lagrangian'][field] = float(d.std(ddof=1) * np.sqrt(len(d)))
      ref = [r for r in evaluate.rlb_reference(DATA, camp) if abs(r['c0'] - c0) < 1e-9]
      tables.append((camp, c0, note, rows, ref))
      for r in rows + ref:
        for m, unit in (('clicks', 'clicks'), ('expected_clicks', 'clicks'), ('cost', 'CPM units'),
                        ('win_rate', 'fraction'), ('ecpc', 'currency/click'),
                        ('cpm', 'CPM units'), ('of_hindsight', 'fraction'),
                        ('overspent_episodes', 'episodes'),
                        ('paired_se_vs_rlb', 'clicks'), ('paired_se_vs_rlb_expected', 'clicks')):
          if r.get(m) is not None and not (isinstance(r[m], float) and np.isnan(r[m])):
            results.append(_row(f'ipinyou-{camp}', r['policy'], m, r[m], unit,
                                c0=C0_NAMES[c0]))
      print(f'{camp} c0={C0_NAMES[c0]}: ' + ', '.join(
          f"{r['policy']} {r['clicks']:.0f} ({r['of_hindsight']:.1%})" for r in rows), flush=True)
  return results, tables


def tuning_criterion():
  """The evidence for two of the pacer's choices, all budgets:

  * its step chosen by realised against expected clicks, on the campaigns without a test
    file (tuned on validation episodes 0-49, scored on 50-99);
  * its start fixed at the tuned u0 against carried across the test episodes
    (``LagrangianBid.carry``), on those held-out halves and on 2997's test file."""
  import dataclasses
  from policy.bidding import tuning
  totals = {k: [0.0, 0.0] for k in ('lagrangian tuned on clicks', 'lagrangian tuned on expected',
                                    'lagrangian tuned on expected, carried start',
                                    '2997 test: fixed start', '2997 test: carried start')}
  for camp in auc.ipinyou_campaigns(DATA):
    val, test, note = evaluate.splits(DATA, camp)
    info = auc.campaign_info(DATA, camp)
    for c0 in evaluate.C0S:
      budget = auc.budget(c0, test.horizon, info.mean_price)
      fixed = tuning.tune_lagrangian(val, budget, info.ecpc, 'dual', 'expected')
      if note == 'validation -> test':
        bidders = {'2997 test: fixed start': fixed,
                   '2997 test: carried start': dataclasses.replace(fixed, carry=True)}
      else:
        bidders = {'lagrangian tuned on clicks': tuning.tune_lagrangian(
                       val, budget, info.ecpc, 'dual', 'clicks'),
                   'lagrangian tuned on expected': fixed,
                   'lagrangian tuned on expected, carried start': dataclasses.replace(
                       fixed, carry=True)}
      for name, bidder in bidders.items():
        o = replay(test, bidder, budget)
        totals[name][0] += o.clicks.sum()
        totals[name][1] += o.expected_clicks.sum()
  print('tuning choices: ' + str(totals), flush=True)
  return [_row('ipinyou-heldout', name, m, v[i], 'clicks')
          for name, v in totals.items() for i, m in enumerate(('clicks', 'expected_clicks'))]


def calibration():
  """Realised clicks of the dual pacer with each pCTR calibration, summed over the five
  budgets per campaign group with the paired SE of each difference from ``none``, and on
  2997 per budget."""
  groups = {}            # (group, method) -> per-episode clicks, one array per cell
  slopes = []
  for camp in auc.ipinyou_campaigns(DATA):
    val, test, note = evaluate.splits(DATA, camp)
    info = auc.campaign_info(DATA, camp)
    group = '2997 test' if note == 'validation -> test' else 'held-out halves'
    for method in evaluate.PCTR_CALIBRATIONS:
      cal = evaluate.pctr_calibrator(val, method)
      if method == 'platt':     # its log-odds slope is 1 / temperature
        slopes.append(_row('ipinyou-calibration', 'platt', 'log-odds slope',
                           1 / cal.temperature, '', group=camp, c0='all'))
      v, t = evaluate.calibrated(val, cal), evaluate.calibrated(test, cal)
      for c0 in evaluate.C0S:
        _, out = evaluate.run(v, t, info, c0, ('lagrangian',))
        groups.setdefault((group, method), []).append(out['lagrangian'].clicks)
  rows = []
  for (group, method), clicks in groups.items():
    c = np.concatenate(clicks)
    extra = {}
    if method != 'none':
      d = c - np.concatenate(groups[(group, 'none')])
      extra['paired_se_vs_none'] = float(d.std(ddof=1) * np.sqrt(d.size))
    rows.append(_row('ipinyou-calibration', f'lagrangian, {method} pCTR', 'clicks', c.sum(),
                     'clicks', calibration=method, group=group, c0='all',
                     episodes=int(c.size), **extra))
    if group == '2997 test':
      rows += [_row('ipinyou-calibration', f'lagrangian, {method} pCTR', 'clicks', x.sum(),
                    'clicks', calibration=method, group=group, c0=C0_NAMES[c0],
                    episodes=int(x.size))
               for c0, x in zip(evaluate.C0S, clicks)]
  print('calibration: ' + ', '.join(f"{r['group']} {r['policy']} {r['value']:.0f}"
                                    for r in rows if r['c0'] == 'all'), flush=True)
  return slopes + rows


def calibration_markdown(results, commands):
  """The calibration block; ``results`` is the whole JSON, for RLB's 2997 row."""
  cmd = commands.get('ipinyou-calibration', {})
  rows = [r for r in results if r['dataset'] == 'ipinyou-calibration'
          and r['metric'] == 'clicks']
  slopes = [r for r in results if r['dataset'] == 'ipinyou-calibration'
            and r['metric'] == 'log-odds slope']
  total = [r for r in rows if r['c0'] == 'all']
  lines = [f"Command: `{cmd.get('command')}` ({cmd.get('date')}; {machine()}). The dual "
           f"pacer (start carried) on the logs' pCTRs and on pCTRs recalibrated on the "
           f"tuning episodes' clicks (`policy.bidding.evaluate.recalibrate`); realised "
           f"clicks summed over the 5 budgets; the paired SE is over episodes, of the "
           f"difference from the uncalibrated run.", '',
           'The log-odds slope Platt scaling fits on each campaign\'s tuning episodes (1 is '
           'calibrated up to a factor): ' + ', '.join(f"{r['group']} {r['value']:.2f}"
                                                     for r in slopes) + '.', '',
           '| test episodes (x 5 budgets) | pCTR | clicks | difference | paired SE |',
           '|---|---|---|---|---|']
  base = {r['group']: r['value'] for r in total if r['calibration'] == 'none'}
  for r in total:
    se = r.get('paired_se_vs_none')
    lines.append(f"| {r['group']} ({r['episodes'] // len(evaluate.C0S)}) | "
                 f"{r['calibration']} | {r['value']:.0f} | "
                 + ('-' if se is None else f"{r['value'] - base[r['group']]:+.0f}") + ' | '
                 + ('-' if se is None else f'{se:.1f}') + ' |')
  per = {(r['calibration'], r['c0']): r['value'] for r in rows if r['c0'] != 'all'}
  per.update({('RLB', r['c0']): r['value'] for r in results
              if r['dataset'] == 'ipinyou-2997' and r['policy'] == 'rlb'
              and r['metric'] == 'clicks'})
  names = [n for n in list(evaluate.PCTR_CALIBRATIONS) + ['RLB']
           if all((n, c) in per for c in C0_NAMES.values())]
  if names:
    lines += ['', '2997 per budget (RLB: our run of its dynamic programme on the raw pCTRs, '
              'from the replay block):', '',
              '| c0 | ' + ' | '.join(names) + ' |', '|---|' + '---|' * len(names)]
    lines += [f'| {c} | ' + ' | '.join(f'{per[(n, c)]:.0f}' for n in names) + ' |'
              for c in C0_NAMES.values()]
  return '\n'.join(lines)


def tuning_markdown(rows, commands):
  v = {(r['policy'], r['metric']): r['value'] for r in rows}
  cmd = commands.get('ipinyou-heldout', {})

  def both(name):
    return (f"{v[(name, 'clicks')]:.0f} held-out clicks "
            f"({v[(name, 'expected_clicks')]:.1f} expected)")

  out = (f"Command: `{cmd.get('command')}` ({cmd.get('date')}; {machine()}). The dual pacer "
         f"on the 8 campaigns without a test file (tuned on validation episodes 0-49, "
         f"scored on 50-99, all 5 budgets, 40 cells).\n\n"
         f"- Step chosen by realised clicks: {both('lagrangian tuned on clicks')}; by "
         f"expected clicks (the rule `policy/bidding/tuning.py` uses): "
         f"{both('lagrangian tuned on expected')}.")
  if ('2997 test: carried start', 'clicks') in v:
    out += (f"\n- Start carried across the test episodes (`LagrangianBid.carry`, what "
            f"`policy.bidding.evaluate` replays): "
            f"{both('lagrangian tuned on expected, carried start')}, against the fixed start "
            f"above. On 2997's test file (tuned on its validation file, whose pCTRs are "
            f"higher), summed over the 5 budgets: fixed start "
            f"{v[('2997 test: fixed start', 'clicks')]:.0f} clicks "
            f"({v[('2997 test: fixed start', 'expected_clicks')]:.1f} expected), carried "
            f"{v[('2997 test: carried start', 'clicks')]:.0f} "
            f"({v[('2997 test: carried start', 'expected_clicks')]:.1f} expected).")
  return out


def speed(repeats=3):
  times_read, times_replay = [], {}
  for _ in range(repeats):
    t = time.perf_counter()
    parts = [auc.ipinyou_split(DATA, c, 'validation') for c in auc.ipinyou_campaigns(DATA)]
    parts.append(auc.ipinyou_split(DATA, '2997', 'test'))
    budgets = np.concatenate([np.full(p.episodes, auc.budget(
        1 / 16, p.horizon, auc.campaign_info(DATA, p.name).mean_price)) for p in parts])
    a = auc.Auctions(*(np.concatenate([getattr(p, k) for p in parts])
                       for k in ('click', 'price', 'pctr', 'valid')), name='all')
    times_read.append(time.perf_counter() - t)
    from policy.bidding.bidders import LagrangianBid
    for name, carry in (('lagrangian', False), ('lagrangian, carried start', True)):
      bidder = LagrangianBid(14000.0, u0=np.log(14000.0 / 3000.0), eta=0.005, carry=carry)
      t = time.perf_counter()
      out = replay(a, bidder, budgets)
      times_replay.setdefault(name, []).append(time.perf_counter() - t)
      assert out.totals()['overspent_episodes'] == 0
  n = a.count
  read = float(np.median(times_read))
  rows = []
  for name, times in times_replay.items():
    rep = float(np.median(times))
    print(f'speed: {n} auctions, read {read:.2f} s, replay ({name}) {rep:.2f} s', flush=True)
    rows += [_row('ipinyou-all', name, 'auctions', n, 'auctions'),
             _row('ipinyou-all', name, 'read_seconds', read, 's'),
             _row('ipinyou-all', name, 'replay_seconds', rep, 's'),
             _row('ipinyou-all', name, 'seconds_per_1m_auctions', (read + rep) * 1e6 / n, 's'),
             _row('ipinyou-all', name, 'ratio_to_10s_target', (read + rep) * 1e6 / n / TARGET_S,
                  'ratio')]
  return rows


def speed_markdown(speed_rows, commands):
  s = {(r['policy'], r['metric']): r['value'] for r in speed_rows}
  cmd = commands.get('ipinyou-all', {})
  out = (f"Command: `{cmd.get('command')}` ({cmd.get('date')}; {machine()}). "
         f"{s[('lagrangian', 'auctions')]:.0f} auctions (the 9 validation files and the 2997 "
         f"test file) read and checked in {s[('lagrangian', 'read_seconds')]:.2f} s, replayed "
         f"through the dual pacer in {s[('lagrangian', 'replay_seconds')]:.2f} s: "
         f"{s[('lagrangian', 'seconds_per_1m_auctions')]:.2f} s per 1M auctions, "
         f"{s[('lagrangian', 'ratio_to_10s_target')]:.2f} of the 10 s target (median of 3).")
  c = 'lagrangian, carried start'
  if (c, 'replay_seconds') in s:
    out += (f" With its start carried across episodes (waves of 10 episodes, what the replay "
            f"tables use): replay {s[(c, 'replay_seconds')]:.2f} s, "
            f"{s[(c, 'seconds_per_1m_auctions')]:.2f} s per 1M auctions, "
            f"{s[(c, 'ratio_to_10s_target')]:.2f} of the target.")
  return out


def markdown(tables, commands):
  replay_cmd = next((v for k, v in commands.items()
                     if k not in ('ipinyou-all', 'ipinyou-heldout', 'ipinyou-calibration')),
                    None)
  out = []
  if replay_cmd:
    out += [f"Command: `{replay_cmd['command']}` ({replay_cmd['date']}; {machine()}).", '']
  if tables:
    summary = {}
    for camp, c0, note, rows, ref in tables:
      by = {r['policy']: r for r in rows}
      summary.setdefault('min_of_hindsight', []).append(by['lagrangian']['of_hindsight'])
      summary.setdefault('min_of_hindsight_clicks', []).append(
          by['lagrangian']['of_hindsight_clicks'])
      summary.setdefault('overspent', []).append(sum(r['overspent_episodes'] for r in rows))
    out += [f"Dual pacer over all {len(tables)} campaign x c0 cells: expected clicks "
            f"{min(summary['min_of_hindsight']):.1%} to {max(summary['min_of_hindsight']):.1%} "
            f"of the hindsight optimum; realised clicks "
            f"{min(summary['min_of_hindsight_clicks']):.1%} to "
            f"{max(summary['min_of_hindsight_clicks']):.1%} of the hindsight set's; "
            f"overspent episodes (any policy): {sum(summary['overspent'])}.", '']
    rlb_lines = []
    for camp, c0, note, rows, ref in tables:
      by = {r['policy']: r for r in rows}
      if 'rlb' in by:
        rlb_lines.append(f"| {camp} | {C0_NAMES[c0]} | {by['lagrangian']['clicks']:.0f} | "
                         f"{by['rlb']['clicks']:.0f} | {by['lagrangian']['expected_clicks']:.1f} | "
                         f"{by['rlb']['expected_clicks']:.1f} | "
                         f"{by['lagrangian']['paired_se_vs_rlb']:.1f} | "
                         f"{by['lagrangian']['paired_se_vs_rlb_expected']:.2f} | "
                         f"{by['hindsight']['clicks']:.1f} |")
    if rlb_lines:
      out += ['Dual pacer against RLB (our run of the paper\'s dynamic programme; it matches '
              'the paper\'s own 2997 row at c0 = 1/32 to the unit):', '',
              '| campaign | c0 | pacer clicks | RLB clicks | pacer expected | RLB expected | '
              'paired SE of the click difference | paired SE, expected | hindsight clicks |',
              '|---|---|---|---|---|---|---|---|---|'] + rlb_lines + ['']
    out += ['`of_hindsight` = expected clicks (sum of pCTR won) / the hindsight LP optimum\'s. '
            'Cost and CPM are in the logs\' price units (CPM), eCPC = cost / 1000 / clicks, '
            'as in the RLB paper\'s tables.', '']
    for camp, c0, note, rows, ref in tables:
      out += [f'**{camp}, c0 = {C0_NAMES[c0]}** (budget {rows[0]["budget_per_episode"]:.0f} '
              f'per episode; {note})', '', evaluate.table(rows + ref, markdown=True), '']
  return '\n'.join(out).rstrip()


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.bidding', description=__doc__.split('\n')[0])
  p.add_argument('--parts', nargs='+', default=['replay', 'speed', 'tuning', 'calibration'],
                 choices=['replay', 'speed', 'tuning', 'calibration'])
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  if not os.path.isdir(DATA):
    print(f'iPinYou data not found at {DATA}; nothing to measure')
    return
  results, tables, speed_rows = [], [], []
  if 'replay' in args.parts:
    r, tables = replay_tables()
    results += r
  if 'speed' in args.parts:
    speed_rows = speed()
    results += speed_rows
  if 'tuning' in args.parts:
    results += tuning_criterion()
  if 'calibration' in args.parts:
    results += calibration()
  # Merged by dataset: --parts speed (ipinyou-all) and --parts replay keep each other's rows.
  path = write_results('bidding', results, merge_by='dataset')
  print('wrote', path)
  if not args.no_docs:
    import json
    with open(path) as f:
      doc = json.load(f)
    speed_rows = [r for r in doc['results'] if r['dataset'] == 'ipinyou-all']
    if speed_rows:
      write_docs_block('bidding-speed', speed_markdown(speed_rows, doc['commands']),
                       'Bidding speed (`bench/bidding --parts speed`)')
    tuning_rows = [r for r in doc['results'] if r['dataset'] == 'ipinyou-heldout']
    if tuning_rows:
      write_docs_block('bidding-tuning', tuning_markdown(tuning_rows, doc['commands']),
                       'Bidding: the pacer\'s tuning criterion (`bench/bidding --parts tuning`)')
    if any(r['dataset'] == 'ipinyou-calibration' for r in doc['results']):
      write_docs_block('bidding-calibration',
                       calibration_markdown(doc['results'], doc['commands']),
                       'Bidding: recalibrated pCTRs (`bench/bidding --parts calibration`)')
    if tables:
      write_docs_block('bidding', markdown(tables, doc['commands']),
                       'Bidding under a budget (`bench/bidding`)')


if __name__ == '__main__':
  main()
