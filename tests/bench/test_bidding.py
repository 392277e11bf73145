"""bench.bidding's calibration block: the table it writes to docs/BENCHMARKS.md from the
rows of ``bench/results/bidding.json`` (the replay itself is tested in test_bidding)."""
from bench import bidding


def _rows():
  def row(group, method, value, c0='all', **extra):
    return bidding._row('ipinyou-calibration', f'lagrangian, {method} pCTR', 'clicks', value,
                        'clicks', calibration=method, group=group, c0=c0, episodes=5 * 100,
                        **extra)
  out = [bidding._row('ipinyou-calibration', 'platt', 'log-odds slope', 0.61, '',
                      group='1458', c0='all')]
  out += [row('held-out halves', 'none', 1154), row('held-out halves', 'platt', 1172,
                                                    paired_se_vs_none=13.2)]
  for method, base in (('none', 100), ('platt', 101), ('isotonic', 99)):
    out += [row('2997 test', method, base * 5, **({} if method == 'none' else
                                                  {'paired_se_vs_none': 8.8}))]
    out += [row('2997 test', method, base + i, c0=c) for i, c in
            enumerate(bidding.C0_NAMES.values())]
  out += [bidding._row('ipinyou-2997', 'rlb', 'clicks', 90 + i, 'clicks', c0=c)
          for i, c in enumerate(bidding.C0_NAMES.values())]
  return out


def test_calibration_block_tables_totals_differences_and_rlb():
  text = bidding.calibration_markdown(_rows(), {'ipinyou-calibration': {
      'command': 'python -m bench.bidding --parts calibration', 'date': 'D'}})
  assert '`python -m bench.bidding --parts calibration` (D;' in text
  assert '1458 0.61' in text
  assert '| held-out halves (100) | none | 1154 | - | - |' in text
  assert '| held-out halves (100) | platt | 1172 | +18 | 13.2 |' in text
  assert '| 2997 test (100) | isotonic | 495 | -5 | 8.8 |' in text
  assert '| c0 | none | platt | isotonic | RLB |' in text
  assert '| 1/32 | 100 | 101 | 99 | 90 |' in text and '| 1/2 | 104 | 105 | 103 | 94 |' in text


def test_calibration_block_without_a_replay_leaves_rlb_out():
  rows = [r for r in _rows() if r['dataset'] != 'ipinyou-2997']
  text = bidding.calibration_markdown(rows, {})
  assert '| c0 | none | platt | isotonic |' in text and 'RLB |' not in text
