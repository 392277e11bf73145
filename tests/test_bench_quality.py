"""bench/quality's protocol and arithmetic: folds, the inverse of the served calibration,
the ensemble, the mean ± std summary and the docs table."""
import numpy as np
import pyarrow as pa
import pytest

from bench import quality


def test_talkingdata_folds_partition_the_rows_and_keep_test_out_of_training():
  table = pa.table({'i': np.arange(900)})
  seen = []
  for name, t in quality.splits('talkingdata', table, seeds=[0], folds=3):
    ids = {k: set(v.column('i').to_pylist()) for k, v in t.items()}
    assert not ids['test'] & (ids['train'] | ids['eval'])
    assert not ids['train'] & ids['eval']
    assert sum(len(v) for v in ids.values()) == 900
    assert 0.07 < len(ids['eval']) / (len(ids['eval']) + len(ids['train'])) < 0.16
    seen.append(ids['test'])
  assert set().union(*seen) == set(range(900)) and sum(map(len, seen)) == 900


def test_seeded_splits_differ_by_seed_and_repeat():
  table = pa.table({'i': np.arange(1000)})
  a = dict(quality.splits('movielens_100k', table, seeds=[0, 1], folds=5))
  b = dict(quality.splits('movielens_100k', table, seeds=[0], folds=5))
  assert a['seed=0']['test'].equals(b['seed=0']['test'])
  assert not a['seed=0']['test'].equals(a['seed=1']['test'])


def test_uncalibrated_inverts_the_platt_head():
  z = np.linspace(-4, 3, 50)
  entry = {'temperature': 1.7, 'bias': -0.3}
  served = 1 / (1 + np.exp(-(z / 1.7 - 0.3)))
  np.testing.assert_allclose(quality._uncalibrated(served, entry), 1 / (1 + np.exp(-z)),
                             rtol=1e-6)
  np.testing.assert_array_equal(quality._uncalibrated(served, {}), served)   # isotonic/none


def test_ensemble_averages_logits_and_calibrates_on_eval():
  rng = np.random.default_rng(0)
  truth = rng.normal(-1, 1.5, 4000)
  y = (rng.random(4000) < 1 / (1 + np.exp(-truth))).astype(float)
  a = {k: 1 / (1 + np.exp(-(truth + rng.normal(0, 1, 4000)))) for k in ('eval', 'test')}
  b = {k: 1 / (1 + np.exp(-(truth + rng.normal(0, 1, 4000)))) for k in ('eval', 'test')}
  a['seconds'], b['seconds'] = 1.0, 2.0
  e = quality.ensemble(a, b, y)
  z = (np.log(a['test'] / (1 - a['test'])) + np.log(b['test'] / (1 - b['test']))) / 2
  np.testing.assert_allclose(e['test_raw'], 1 / (1 + np.exp(-z)), rtol=1e-9)
  from sklearn.metrics import roc_auc_score
  # Independent errors average out: the ensemble ranks better than either model.
  assert roc_auc_score(y, e['test']) > max(roc_auc_score(y, a['test']),
                                           roc_auc_score(y, b['test']))
  assert e['seconds'] == 3.0


def test_summary_and_docs_table():
  rows = []
  for split, (auc, pos) in {'seed=0': (0.70, 10), 'seed=1': (0.74, 12)}.items():
    for model, delta in (('lightgbm', 0.0), ('dnn', 0.01)):
      rows += [{'dataset': 'd', 'model': model, 'split': split, 'metric': 'auc',
                'value': auc + delta, 'unit': ''},
               {'dataset': 'd', 'model': model, 'split': split, 'metric': 'logloss',
                'value': 0.5 - delta, 'unit': ''}]
    rows.append({'dataset': 'd', 'model': 'all', 'split': split,
                 'metric': 'test_positives', 'value': pos, 'unit': 'rows'})
    rows.append({'dataset': 'd', 'model': 'dnn', 'split': split,
                 'metric': quality.CHOSEN, 'value': 1, 'unit': 'split'})
    rows.append({'dataset': 'd', 'model': quality.BAYES, 'split': split,
                 'metric': 'auc', 'value': 0.8, 'unit': ''})
  summary = {(r['model'], r['metric']): r['value'] for r in quality.summarize(rows)}
  assert ('dnn', quality.CHOSEN + '_mean') not in summary   # a record, not a metric
  assert summary[('dnn', 'auc_mean')] == pytest.approx(0.73)
  assert summary[('dnn', 'auc_std')] == pytest.approx(np.std([0.71, 0.75], ddof=1))
  assert summary[('lightgbm', 'auc_n')] == 2
  text = quality.markdown(rows + quality.summarize(rows),
                          {'d': {'command': 'python -m bench.quality', 'date': 'today'}})
  assert 'seed=0: 10, seed=1: 12' in text
  dnn = next(l for l in text.splitlines() if l.startswith('| dnn '))
  assert '0.7300 ± 0.0283' in dnn and '+0.0100' in dnn and '-0.0100' in dnn
  assert dnn.endswith('| -0.0700 |')   # AUC − Bayes: 0.73 − 0.80
  assert 'chosen by eval AUC: seed=0: dnn, seed=1: dnn' in text
