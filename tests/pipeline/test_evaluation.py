"""The Evaluator's TFMA configuration: metrics for every task, slices, and gates."""
import json
import os

import pytest
import tensorflow_model_analysis as tfma

from pipeline import evaluation
from transform import feature_spec as fs

from helpers import REPO_ROOT


def _by_name(metrics_spec):
  out = {}
  for m in metrics_spec.metrics:
    config = json.loads(m.config) if m.config else {}
    name = config.get('name') or m.class_name
    if m.class_name == 'ExpectedCalibrationError':
      name = f'ece_{config["bins"]}_{"mass" if config["equal_mass"] else "width"}'
    out[name] = m
  return out


def test_eval_config_single_task_with_gates():
  spec = fs.load(os.path.join(REPO_ROOT, 'specs', 'movielens_100k.yaml'))
  gates = evaluation.Gates(min_auc=0.7, max_calibration_gap=0.04, max_ece=0.03,
                           max_auc_drop=0.02, max_logloss_rise=0.001)
  config = evaluation.eval_config(spec, gates)
  (model,) = config.model_specs
  # The spec's derived label, read through transform_features.
  assert model.label_key == 'liked_xf' and model.prediction_key == 'probability'
  assert not model.label_keys and not model.example_weight_keys
  assert list(model.preprocessing_function_names) == ['transform_features']
  (primary,) = config.metrics_specs
  assert not primary.output_names           # the one output, named by prediction_key
  metrics = _by_name(primary)
  assert {'AUC', 'auc_pr', 'logloss', 'brier', 'Calibration', 'ExampleCount',
          'CalibrationPlot', 'ece_10_width', 'ece_20_width', 'ece_10_mass', 'ece_20_mass',
          'GroupAUC'} <= set(metrics)
  assert json.loads(metrics['GroupAUC'].config) == {'group_key': 'user_id'}
  assert metrics['ece_20_mass'].module == 'pipeline.metrics'

  def gates_of(name):
    out = []
    for g in metrics[name].per_slice_thresholds:   # every gate holds on the whole test set
      assert len(g.slicing_specs) == 1 and not g.slicing_specs[0].feature_keys
      out.append(g.threshold)
    return out

  auc_value, auc_change = gates_of('AUC')
  assert auc_value.value_threshold.lower_bound.value == 0.7
  assert auc_change.change_threshold.absolute.value == -0.02
  (calibration,) = gates_of('Calibration')
  assert calibration.value_threshold.lower_bound.value == pytest.approx(0.96)
  assert calibration.value_threshold.upper_bound.value == pytest.approx(1.04)
  (ece,) = gates_of('ece_10_width')
  assert ece.value_threshold.upper_bound.value == 0.03
  (logloss,) = gates_of('logloss')
  assert logloss.change_threshold.absolute.value == 0.001
  assert logloss.change_threshold.direction == tfma.MetricDirection.LOWER_IS_BETTER
  assert not gates_of('ece_20_mass') and not gates_of('GroupAUC')
  sliced = [list(s.feature_keys) for s in config.slicing_specs]
  assert sliced == [[]] + [[k] for k in spec.slice_keys]


def test_eval_config_measures_every_task_and_cvr_on_clicks():
  spec = fs.load(os.path.join(REPO_ROOT, 'specs', 'default.yaml'))
  config = evaluation.eval_config(spec)
  (model,) = config.model_specs
  # probability is CTR's output (the export writes it under both names): measured once.
  assert dict(model.label_keys) == {
      'probability': 'clicked_xf', 'probability_cvr': 'converted_xf',
      'probability_ctcvr': 'converted_xf'}
  assert evaluation.primary_task(spec) == 'ctr'
  assert dict(model.example_weight_keys) == {'probability_cvr': 'clicked_xf'}
  primary, plain, weighted = config.metrics_specs
  assert list(primary.output_names) == ['probability']
  assert list(plain.output_names) == ['probability_ctcvr']
  assert list(weighted.output_names) == ['probability_cvr']
  assert weighted.example_weights.weighted and not weighted.example_weights.unweighted
  for s in (plain, weighted):   # per-task metrics are reported, the gates are the primary's
    assert set(_by_name(s)) == set(_by_name(primary))
    assert not any(m.per_slice_thresholds for m in s.metrics)
  # One independent task per label: no CVR weighting.
  independent = evaluation.eval_config(spec, tasks='all')
  assert dict(independent.model_specs[0].label_keys)['probability_converted'] == 'converted_xf'
  assert not independent.model_specs[0].example_weight_keys


def test_gates_refuse_bad_values():
  with pytest.raises(ValueError, match='max_ece'):
    evaluation.Gates(max_ece=-0.1)
  with pytest.raises(ValueError, match='min_auc'):
    evaluation.Gates(min_auc=float('nan'))


def test_gbdt_eval_config_compares_the_candidate_with_the_gbdt_baseline():
  config = evaluation.gbdt_eval_config()
  candidate, gbdt = config.model_specs
  assert (candidate.name, candidate.is_baseline) == ('candidate', False)
  assert (gbdt.name, gbdt.is_baseline) == ('gbdt', True)
  # Model-agnostic: each model's probability and the label are columns of one frame.
  assert candidate.label_key == gbdt.label_key == evaluation.GBDT_LABEL_COLUMN
  assert {candidate.prediction_key, gbdt.prediction_key} == set(
      evaluation.GBDT_PREDICTION_COLUMNS.values())
  (metrics,) = config.metrics_specs
  by_name = _by_name(metrics)
  assert {'auc', 'logloss', 'calibration', 'ece_10_width'} <= {k.lower() for k in by_name}
  # TFMA refuses change thresholds without a loadable baseline: gbdt_verdict gates.
  assert not any(m.per_slice_thresholds or m.HasField('threshold') for m in metrics.metrics)
  assert list(config.slicing_specs) == [tfma.SlicingSpec()]


@pytest.mark.parametrize('auc_diff,logloss_diff,blessed', [
    (0.003, -0.001, True), (0.001, -0.001, False),     # AUC margin not met
    (0.003, 0.0006, False),                             # logloss rose beyond the allowance
    (0.003, 0.0004, True), (float('nan'), -0.001, False), (None, -0.001, False)])
def test_gbdt_verdict_applies_the_margins_to_the_differences(auc_diff, logloss_diff,
                                                             blessed):
  gates = evaluation.Gates(gbdt_auc_margin=0.002, gbdt_max_logloss_rise=0.0005)
  metrics = {'logloss_diff': logloss_diff}
  if auc_diff is not None:
    metrics['auc_diff'] = auc_diff
  verdict = evaluation.gbdt_verdict(metrics, gates)
  assert verdict['blessed'] is blessed
  rows = {r['gate']: r for r in verdict['gates']}
  assert rows['beats GBDT on AUC']['passed'] is (auc_diff is not None and auc_diff >= 0.002)
  assert rows['beats GBDT on logloss']['passed'] is (logloss_diff <= 0.0005)
  if not rows['beats GBDT on AUC']['passed']:
    assert ('missing' if auc_diff is None or auc_diff != auc_diff else
            'against the GBDT baseline') in rows['beats GBDT on AUC']['why']


def test_gbdt_margin_may_be_negative_but_the_logloss_allowance_not():
  assert evaluation.Gates(gbdt_auc_margin=-0.01).gbdt_auc_margin == -0.01
  with pytest.raises(ValueError, match='gbdt_max_logloss_rise'):
    evaluation.Gates(gbdt_max_logloss_rise=-0.01)
  with pytest.raises(ValueError, match='gbdt_auc_margin'):
    evaluation.Gates(gbdt_auc_margin=float('inf'))
