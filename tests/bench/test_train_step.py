"""bench/train_step.py's summary (ratios to the DNN within each round), its table and its
checks of the variants, on hand-made timings: the benchmark itself trains every model."""
import pytest

from bench import train_step


def test_ratios_are_taken_within_each_round():
  # Round 2 is a slow spell of the machine for both: the ratio of that round stays 3.
  ms = {'dnn': [10.0, 20.0, 40.0], 'resort': [30.0, 80.0, 120.0]}
  rows = {r['variant']: r for r in train_step.summarize(ms)}
  assert rows['dnn']['ratio'] == rows['dnn']['ratio_min'] == rows['dnn']['ratio_max'] == 1.0
  assert rows['resort']['ms_per_step'] == 80.0
  assert (rows['resort']['ms_min'], rows['resort']['ms_max']) == (30.0, 120.0)
  # Per round 3, 4, 3: the median ratio is 3, not the ratio of the medians (80 / 20 = 4).
  assert rows['resort']['ratio'] == pytest.approx(3.0)
  assert rows['resort']['ratio_min'] == pytest.approx(3.0)
  assert rows['resort']['ratio_max'] == pytest.approx(4.0)
  assert rows['resort']['rounds'] == 3


def test_summary_needs_the_reference_and_equal_rounds():
  with pytest.raises(ValueError, match="reference variant 'dnn'"):
    train_step.summarize({'mtt': [1.0]})
  with pytest.raises(ValueError, match='same number of rounds'):
    train_step.summarize({'dnn': [1.0, 2.0], 'mtt': [3.0]})


def test_markdown_row():
  rows = train_step.summarize({'dnn': [10.0, 12.0], 'mtt': [25.0, 36.0]})
  for r in rows:
    r['parameters'] = 1234567
  text = train_step.markdown(rows, {'machine': 'm', 'command': 'cmd', 'date': 'd',
                                    'train_rows': 16000, 'batch_size': 512, 'steps': 30,
                                    'rounds': 2})
  assert '| mtt | 30.5 (25.0–36.0) | 2.75 (2.50–3.00) | 1,234,567 |' in text
  assert '16000 training rows, batch 512, 30 steps per variant and round, 2 rounds' in text


def test_bad_variants_fail_before_any_work():
  with pytest.raises(ValueError, match="reference variant 'dnn'"):
    train_step.run({'mtt': {'model': 'mtt'}}, 100, 1, 1, 8, 1)
  with pytest.raises(ValueError, match='unknown model'):
    train_step.run({'dnn': {'model': 'dnn'}, 'x': {'model': 'nope'}}, 100, 1, 1, 8, 1)
  with pytest.raises((TypeError, ValueError), match='no_such_setting'):
    train_step.run({'dnn': {'model': 'dnn', 'model_config': {'no_such_setting': 1}}},
                   100, 1, 1, 8, 1)
  with pytest.raises(SystemExit):
    train_step.main(['--rounds', '0'])
