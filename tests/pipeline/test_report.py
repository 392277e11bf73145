"""The run report (pipeline/report.py) from a real TFMA evaluation with gates, slices and a
calibration plot: metrics.json, the reliability PNG and the static HTML page."""
import datetime
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma

from pipeline import evaluation, report
from pipeline import metrics as custom_metrics


@pytest.fixture(scope='module')
def evaluated(tmp_path_factory):
  rng = np.random.default_rng(3)
  n = 3000
  group = rng.choice(['a', 'b'], n)
  p = np.clip(rng.beta(2, 8, n), 1e-4, 1 - 1e-4)
  y = (rng.random(n) < np.where(group == 'a', p, p * 0.5)).astype(float)  # b is over-predicted
  frame = pd.DataFrame({'label': y, 'prediction': p, 'group': group,
                        'user_id': rng.integers(0, 50, n).astype(str)})
  gates = evaluation.Gates(min_auc=0.99, max_calibration_gap=0.5, max_ece=0.5)

  def bound(lower=None, upper=None):
    v = tfma.GenericValueThreshold()
    if lower is not None:
      v.lower_bound.value = lower
    if upper is not None:
      v.upper_bound.value = upper
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                         threshold=tfma.MetricThreshold(value_threshold=v))]

  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='label', prediction_key='prediction')],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExampleCount'),
          tfma.MetricConfig(class_name='AUC', per_slice_thresholds=bound(lower=0.99)),
          tfma.MetricConfig(class_name='BinaryCrossentropy', config='{"name": "logloss"}'),
          tfma.MetricConfig(class_name='Calibration', per_slice_thresholds=bound(0.5, 1.5)),
          tfma.MetricConfig(class_name='ExpectedCalibrationError', module=custom_metrics.MODULE,
                            per_slice_thresholds=bound(upper=0.5)),
          tfma.MetricConfig(class_name='GroupAUC', module=custom_metrics.MODULE),
          tfma.MetricConfig(class_name='CalibrationPlot', config='{"num_buckets": 1000}'),
      ])],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=['group'])])
  out = str(tmp_path_factory.mktemp('eval'))
  tfma.analyze_raw_data(frame, config, output_path=out)
  return out, gates, y, p


def test_report_folder(evaluated, tmp_path):
  uri, gates, y, p = evaluated
  folder = report.write(uri, 'dnn', gates, str(tmp_path),
                        extra={'pipeline': 'unit'},
                        baselines=[{'model': 'lightgbm', 'auc': 0.7, 'source': 'bench'}],
                        now=datetime.datetime(2026, 11, 28, 12, 0, 1))
  assert folder.endswith('dnn_20261128_120001')
  content = json.load(open(f'{folder}/metrics.json'))
  assert content['metrics']['example_count'] == len(y)
  gates_by_name = {g['gate']: g for g in content['gates']['gates']}
  assert content['gates']['blessed'] is False
  assert gates_by_name['AUC lower bound']['passed'] is False
  assert 'auc' in gates_by_name['AUC lower bound']['why'].lower()
  assert gates_by_name['calibration']['passed'] is True
  assert gates_by_name['ECE']['passed'] is True
  # No blessed baseline in this evaluation: the regression gates are not applied.
  assert gates_by_name['no AUC regression']['applied'] is False
  assert gates_by_name['no logloss regression']['passed'] is None
  slices = {r['slice']: r for r in content['slices']}
  assert set(slices) == {'overall', 'group = a', 'group = b'}
  # Group b's labels were drawn at half its predictions.
  assert slices['group = b']['calibration'] > 1.6 > slices['group = a']['calibration']
  assert 0 < slices['overall']['gauc'] < 1
  curve = content['reliability']['probability']
  assert sum(curve['count']) == len(y) and len(curve['mean_prediction']) <= 20
  # The binned mean prediction is the data's own.
  assert np.average(curve['mean_prediction'], weights=curve['count']) == pytest.approx(
      p.mean(), rel=1e-6)
  assert open(f'{folder}/reliability.png', 'rb').read(4) == b'\x89PNG'
  page = open(f'{folder}/report.html', encoding='utf-8').read()
  for text in ('NOT BLESSED', 'AUC lower bound', 'FAIL', 'group = b', 'reliability.png',
               'lightgbm'):
    assert text in page
  with pytest.raises(FileExistsError):   # a run's folder is never overwritten
    report.write(uri, 'dnn', gates, str(tmp_path), now=datetime.datetime(2026, 11, 28, 12, 0, 1))


@pytest.fixture(scope='module')
def gbdt_evaluated(tmp_path_factory):
  """The GbdtEvaluator's TFMA evaluation (:func:`components.gbdt_evaluator.evaluate`) of
  two models' probabilities: the candidate ranks better than the baseline but is
  over-confident, so its logloss is worse."""
  from components import gbdt_evaluator
  rng = np.random.default_rng(4)
  n = 4000
  p = np.clip(rng.beta(2, 8, n), 1e-3, 1 - 1e-3)
  y = (rng.random(n) < p).astype(np.int64)
  gbdt = np.clip(p + rng.normal(0, 0.08, n), 1e-3, 1 - 1e-3)    # noisier
  candidate = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))       # same ranking, too sharp
  gates = evaluation.Gates(gbdt_auc_margin=0.0, gbdt_max_logloss_rise=0.0)
  out = str(tmp_path_factory.mktemp('gbdt_eval') / 'out')
  columns = {evaluation.GBDT_LABEL_COLUMN: y,
             evaluation.GBDT_PREDICTION_COLUMNS['candidate']: candidate,
             evaluation.GBDT_PREDICTION_COLUMNS['gbdt']: gbdt}
  verdict = gbdt_evaluator.evaluate(columns, out, gates)
  return out, gates, y, candidate, gbdt, verdict


def test_report_compares_with_the_gbdt_baseline(evaluated, gbdt_evaluated, tmp_path):
  from sklearn.metrics import log_loss, roc_auc_score
  uri, gates, _, _ = evaluated
  gbdt_uri, gbdt_gates, y, candidate, gbdt, verdict = gbdt_evaluated
  assert roc_auc_score(y, candidate) > roc_auc_score(y, gbdt)
  # The component's own verdict and metrics: TFMA's, on the frame it was given.
  assert verdict['blessed'] is False and verdict['rows'] == len(y)
  assert verdict['gbdt']['auc'] == pytest.approx(roc_auc_score(y, gbdt), abs=2e-3)
  assert verdict['candidate']['logloss'] == pytest.approx(log_loss(y, candidate), rel=1e-3)
  assert log_loss(y, candidate) > log_loss(y, gbdt)
  folder = report.write(uri, 'dnn', gbdt_gates, str(tmp_path), gbdt_evaluation_uri=gbdt_uri,
                        now=datetime.datetime(2026, 11, 28, 12, 0, 2))
  content = json.load(open(f'{folder}/metrics.json'))
  rows = {g['gate']: g for g in content['gates']['gates']}
  assert rows['beats GBDT on AUC']['passed'] is True
  assert rows['beats GBDT on AUC']['value'] == pytest.approx(
      roc_auc_score(y, candidate) - roc_auc_score(y, gbdt), abs=2e-3)
  assert rows['beats GBDT on logloss']['passed'] is False
  assert 'against the GBDT baseline' in rows['beats GBDT on logloss']['why']
  assert rows['beats GBDT on logloss']['value'] == pytest.approx(
      log_loss(y, candidate) - log_loss(y, gbdt), rel=1e-3)
  assert content['verdict'] is False
  table = {b['model']: b for b in content['baselines']}
  assert table['GBDT (LightGBM, tuned)']['auc'] == pytest.approx(roc_auc_score(y, gbdt), abs=2e-3)
  assert table['candidate']['logloss'] == pytest.approx(log_loss(y, candidate), rel=1e-3)
  page = open(f'{folder}/report.html', encoding='utf-8').read()
  assert 'beats GBDT on logloss' in page and 'GBDT (LightGBM, tuned)' in page
