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
  for split, (auc, pos, gain) in {'seed=0': (0.70, 10, 0.01), 'seed=1': (0.74, 12, 0.03)}.items():
    for model, delta in (('lightgbm', 0.0), ('dnn', gain)):
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
    rows.append({'dataset': 'd', 'model': 'dnn', 'split': split,
                 'metric': quality.EXAMPLES_PER_S, 'value': 15000 + 5000 * pos / 12,
                 'unit': quality.UNITS[quality.EXAMPLES_PER_S]})
  summary = {(r['model'], r['metric']): r['value'] for r in quality.summarize(rows)}
  assert ('dnn', quality.CHOSEN + '_mean') not in summary   # a record, not a metric
  assert summary[('dnn', 'auc_mean')] == pytest.approx(0.74)
  assert summary[('dnn', 'auc_std')] == pytest.approx(np.std([0.71, 0.77], ddof=1))
  assert summary[('lightgbm', 'auc_n')] == 2
  # Paired over splits: differences 0.01 and 0.03, mean 0.02, SE std / sqrt(2) = 0.01.
  mean, se = quality.paired(rows, 'd', 'dnn', 'lightgbm', 'auc')
  assert mean == pytest.approx(0.02) and se == pytest.approx(0.01)
  assert quality.paired(rows, 'd', 'dnn', 'absent', 'auc') is None
  text = quality.markdown(rows + quality.summarize(rows),
                          {'d': {'command': 'python -m bench.quality', 'date': 'today'}})
  assert 'seed=0: 10, seed=1: 12' in text
  assert 'AUC − lightgbm (paired SE)' in text               # no tuned row: the default
  dnn = next(l for l in text.splitlines() if l.startswith('| dnn '))
  assert '0.7400 ± 0.0424' in dnn and '+0.0200 (0.0100)' in dnn and '-0.0200 (0.0100)' in dnn
  # The Trainer's examples per second beside its row (the issue asks for it), in the
  # column its header names; none for a model that did not record it.
  header = next(l for l in text.splitlines() if l.startswith('| model | AUC |'))
  column = header.split(' | ').index('train examples/s')
  assert dnn.split(' | ')[column] == f'{(15000 + 5000 * 10 / 12 + 20000) / 2:.0f} ± 589'
  lgb = next(l for l in text.splitlines() if l.startswith('| lightgbm '))
  assert lgb.split(' | ')[column] == ''


def test_tuned_lightgbm_is_the_reference_when_it_ran():
  rows = []
  for split, gain in (('seed=0', 0.01), ('seed=1', 0.02)):
    for model, auc in (('lightgbm', 0.70), (quality.TUNED, 0.70 + gain), ('dnn', 0.75)):
      rows.append({'dataset': 'd', 'model': model, 'split': split, 'metric': 'auc',
                   'value': auc, 'unit': ''})
  rows.append({'dataset': 'd', 'model': quality.TUNED, 'split': 'seed=0', 'metric': 'search',
               'value': 30, 'unit': 'trials', 'chosen': {'num_leaves': 63,
                                                         'learning_rate': 0.0312},
               'trials': [], 'train_rows': 1000})
  text = quality.markdown(rows + quality.summarize(rows), {})
  assert f'AUC − {quality.TUNED} (paired SE)' in text
  assert 'a 30-trial search on seed=0 (1000 training rows)' in text
  assert 'num_leaves 63, learning_rate 0.0312' in text
  assert not any(l.startswith(f'| {quality.TUNED} ') and 'search' in l
                 for l in text.splitlines())                 # a record, not a row
  dnn = next(l for l in text.splitlines() if l.startswith('| dnn '))
  assert '+0.0350 (0.0050)' in dnn


def test_docs_table_of_learned_terms_only_where_they_were_measured():
  from bench import oracle
  rows = []
  for split, user in (('seed=0', 0.2), ('seed=1', 0.4)):
    rows.append({'dataset': 'g', 'model': 'dnn', 'split': split, 'metric': 'auc',
                 'value': 0.75, 'unit': ''})
    for term in list(oracle.TERMS) + ['residual_sd']:
      rows.append({'dataset': 'g', 'model': 'dnn', 'split': split,
                   'metric': quality.LEARNED + term,
                   'value': user if term == 'user' else 1.0, 'unit': ''})
    rows.append({'dataset': 'm', 'model': 'dnn', 'split': split, 'metric': 'auc',
                 'value': 0.7, 'unit': ''})
  text = quality.markdown(rows + quality.summarize(rows), {})
  header = next(l for l in text.splitlines() if l.startswith('| model | user | ad |'))
  assert header.count('|') == len(oracle.TERMS) + 3
  learned = [l for l in text.splitlines() if l.startswith('| dnn | 0.30 | 1.00 |')]
  assert len(learned) == 1                               # on g only, the mean of 0.2, 0.4
  assert text.count('least-squares coefficient') == 1
  assert quality._split_seed('seed=12') == 12


def test_expected_auc_is_the_auc_averaged_over_label_draws():
  rng = np.random.default_rng(0)
  p = rng.beta(1, 20, 400)
  q = p + rng.normal(0, 0.02, 400)
  from sklearn.metrics import roc_auc_score
  draws = [roc_auc_score(y, q) for y in (rng.random((300, 400)) < p)]
  assert quality.expected_auc(p, q) == pytest.approx(np.mean(draws), abs=0.01)
  assert quality.expected_auc(p, p) > quality.expected_auc(p, q)


def test_ablation_variants_are_valid_trainer_settings_one_lever_apart():
  from trainer import models, optimization
  for name, v in quality.ABLATION.items():
    models.model_config(v['model'], v.get('model_config'))
    models.from_dict(optimization.OptimizerConfig, v.get('optimizer'), name)
  default = models.model_config('dnn')
  assert default.wide and default.embedding_l2 > 0                  # what is ablated
  assert default.wide_cell_information and default.wide_fit == 'backfit'
  assert models.model_config('dnn', quality.ABLATION['dnn - backfit']['model_config']
                             ).wide_fit == 'joint'
  assert optimization.OptimizerConfig().embedding_optimizer == 'adagrad'
  old = quality.ABLATION['dnn (old defaults)']
  assert not models.model_config('dnn', old['model_config']).wide
  with pytest.raises(SystemExit):
    quality.main(['--variants', '[1, 2]', '--no-docs'])


def test_a_stopped_run_resumes_from_its_first_unfinished_split(tmp_path, monkeypatch):
  """Each split's rows are kept as the run goes; --resume with the same command runs only
  the splits left, with the search's choice read back instead of searched again."""
  from bench import common
  monkeypatch.setattr(common, 'RESULTS_DIR', str(tmp_path))
  table = pa.table({'x': np.arange(40)})
  monkeypatch.setattr(quality, 'load_dataset', lambda dataset, rows: table)
  searches = []

  def tune(tables, spec, trials, rows):
    searches.append(trials)
    return {'num_leaves': 7}, [{'trial': 0}]
  monkeypatch.setattr(quality, 'tune_lightgbm', tune)
  calls = []

  def bench_split(dataset, name, tables, spec, deep, workdir, train, results,
                  lgb_params=None, world=None, deep_tuned=None):
    calls.append((name, lgb_params))
    if name == 'seed=1' and len(calls) == 2:
      raise RuntimeError('stopped')
    results.append({'dataset': dataset, 'model': 'dnn', 'split': name, 'metric': 'auc',
                    'value': 0.7 + 0.01 * int(name[-1]), 'unit': ''})
  monkeypatch.setattr(quality, 'bench_split', bench_split)
  argv = ['--datasets', 'movielens', '--seeds', '0', '1', '2', '--lgb-trials', '3',
          '--deep-trials', '0', '--no-docs']
  with pytest.raises(RuntimeError, match='stopped'):
    quality.main(argv)
  partial = tmp_path / 'quality.movielens_100k.partial.json'
  assert partial.is_file() and not (tmp_path / 'quality.json').exists()
  with pytest.raises(SystemExit):   # another command's stopped run is not taken over
    quality.main(argv[:5] + argv[6:] + ['--resume'])
  calls.clear()
  quality.main(argv + ['--resume'])
  assert calls == [('seed=1', {'num_leaves': 7}), ('seed=2', {'num_leaves': 7})]
  assert searches == [3]            # searched once, in the stopped run
  assert not partial.exists()
  import json
  rows = json.loads((tmp_path / 'quality.json').read_text())['results']
  assert sorted(r['split'] for r in rows if r['metric'] == 'auc') == [
      'seed=0', 'seed=1', 'seed=2']
  mean = [r for r in rows if r['metric'] == 'auc_mean' and r['model'] == 'dnn']
  assert mean[0]['value'] == pytest.approx(0.71)
