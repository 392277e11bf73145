"""bench/main_job.py's summary (the spread over repeats of one seed) and its docs table,
on hand-made run reports."""
import pytest

from bench import main_job


def _report(auc, gbdt_auc, blessed=True):
  return {'metrics': {'auc': auc, 'logloss': 0.09},
          'gbdt': {'metrics': {'auc': gbdt_auc, 'logloss': 0.0905},
                   'auc_diff': auc - gbdt_auc, 'logloss_diff': -0.0005,
                   'trainer': {'trees': 80}},
          'trainer': {'train_examples_per_second': 9000.0},
          'blessed': blessed, 'pushed': blessed}


def test_summary_measures_the_spread_over_repeats_of_the_first_seed():
  results = []
  for run, auc in enumerate((0.7300, 0.7310, 0.7290)):
    results += main_job.rows_of(0, run, _report(auc, 0.7200), 800.0 + run, {'Trainer': 90.0})
  results += main_job.rows_of(1, 0, _report(0.7100, 0.7150, blessed=False), 790.0, {})
  summary = {r['metric']: r['value'] for r in main_job.summarize(results, 0)}
  assert summary['auc_range'] == pytest.approx(0.0020)
  assert summary['auc_std'] == pytest.approx(0.0010)
  assert summary['auc_margin_range'] == pytest.approx(0.0020)
  assert summary['wall_s_range'] == pytest.approx(2.0)
  text = main_job.markdown(results + main_job.summarize(results, 0), 'cmd', 'today')
  assert '| 0 | 0 | 13.3 | 0.7300 | 0.0900 | 0.7200 | 0.0905 | +0.0100 | -0.0005 |' in text
  assert '| 1 | 0 |' in text and text.count('| yes | yes |') == 3
  assert '| no | no |' in text and 'auc_range (seed 0 repeats): 0.0020' in text
  rows = {r['metric']: r for r in results if (r['seed'], r['run']) == (0, 0)}
  assert rows['seconds_Trainer']['value'] == 90.0 and rows['seconds_Trainer']['unit'] == 's'


def test_one_repeat_has_no_spread():
  results = main_job.rows_of(0, 0, _report(0.73, 0.72), 800.0, {})
  assert main_job.summarize(results, 0) == []


def test_train_seeds_and_a_trainer_config_reach_the_runner(tmp_path):
  extra = main_job.runner_args(2, {'model_config': {'wide_fit': 'joint'}}, str(tmp_path))
  assert extra[:2] == ['--train-seed', '2'] and extra[2] == '--trainer-config'
  from pipeline import configs
  assert configs.load_trainer_config(extra[3]) == {'model_config': {'wide_fit': 'joint'}}
  assert main_job.runner_args(None, None, str(tmp_path)) == []
  results = main_job.rows_of(0, 1, _report(0.73, 0.72), 800.0, {}, train_seed=2)
  assert {r['metric']: r['value'] for r in results}['train_seed'] == 2
  assert '| 0 | 1 (train seed 2) | 13.3 | 0.7300 |' in main_job.markdown(results, 'c', 'd')


@pytest.mark.parametrize('argv, message', [
    (['--trainer-config', '[1]'], '--trainer-config: a JSON object'),
    (['--trainer-config', '{bad'], '--trainer-config: a JSON object'),
    (['--out', '../x'], '--out: letters'),
    (['--repo', '/nonexistent'], 'no pipeline/local_runner.py'),
    (['--against', '/nonexistent', '--out', 'ab'], '--against /nonexistent: no pipeline'),
    (['--against', '.'], 'name the A/B'),
    (['--rounds', '0'], '--rounds must be at least 1'),
])
def test_bad_arguments_are_refused_before_any_run(argv, message, capsys):
  with pytest.raises(SystemExit):
    main_job.main(argv)
  assert message in capsys.readouterr().err


def test_the_ab_alternates_its_order_and_reports_this_over_the_other():
  assert main_job.ab_plan(3) == [(0, 'against'), (0, 'this'), (1, 'this'), (1, 'against'),
                                 (2, 'against'), (2, 'this')]
  results = []
  for run, side, wall, trainer in ((0, 'against', 600.0, 100.0), (0, 'this', 720.0, 150.0),
                                   (1, 'this', 800.0, 160.0), (1, 'against', 500.0, 80.0)):
    results += [dict(r, side=side) for r in main_job.rows_of(
        0, run, _report(0.75, 0.72), wall, {'Trainer': trainer})]
  summary = {(r['run'], r['metric']): r['value'] for r in main_job.ab_summary(results)}
  assert summary[(0, 'wall_s_ratio')] == pytest.approx(1.2)
  assert summary[(1, 'wall_s_ratio')] == pytest.approx(1.6)
  assert summary[('all', 'wall_s_ratio_mean')] == pytest.approx(1.4)
  assert summary[('all', 'wall_s_ratio_min')] == pytest.approx(1.2)
  assert summary[('all', 'seconds_Trainer_ratio_max')] == pytest.approx(2.0)
  text = main_job.ab_markdown(results + main_job.ab_summary(results), 'cmd', 'today')
  assert '| 0 | against | 10.0 | 0 | 100 |' in text and '| 1 | this | 13.3 | 0 | 160 |' in text
  assert 'wall_s: mean 1.40 (rounds 1.20–1.60)' in text


def test_an_unfinished_round_has_no_ratio():
  results = [dict(r, side='against') for r in main_job.rows_of(0, 0, _report(0.75, 0.72),
                                                                 600.0, {})]
  assert main_job.ab_summary(results) == []


def test_a_named_results_file_records_the_module_that_ran(tmp_path, monkeypatch):
  from bench import common
  monkeypatch.setattr(common, 'RESULTS_DIR', str(tmp_path))
  monkeypatch.setattr(main_job.sys, 'argv', ['main_job.py', '--seeds', '0', '--out', 'ab'])
  import json
  with open(common.write_results('ab', [], module='main_job')) as f:
    assert json.load(f)['command'] == 'python -m bench.main_job --seeds 0 --out ab'
  with open(common.write_results('ab', [])) as f:
    assert json.load(f)['command'].startswith('python -m bench.ab ')
