"""The Evaluator's custom TFMA metrics (pipeline/metrics.py): GAUC against a per-user loop
over scikit-learn's AUC, and ECE and GAUC run through TFMA's own Beam evaluation."""
import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma
from sklearn.metrics import roc_auc_score

from pipeline import metrics
from trainer.layers.calibration import expected_calibration_error


def _reference_gauc(y, p, g):
  num = den = 0.0
  for u in np.unique(g):
    m = g == u
    if 0 < y[m].sum() < m.sum():
      num += m.sum() * roc_auc_score(y[m], p[m])
      den += m.sum()
  return num / den


def _data(n=6000, users=300, seed=0):
  rng = np.random.default_rng(seed)
  g = rng.integers(0, users, n)
  bias = rng.normal(0, 1, users)[g]             # users differ in base rate
  score = rng.normal(0, 1, n)
  y = (rng.random(n) < 1 / (1 + np.exp(-(score + bias - 2)))).astype(np.float64)
  p = 1 / (1 + np.exp(-(score * 0.8 + bias - 1.7)))
  p = np.round(p, 2)                            # ties inside users
  return y, p, g


def test_group_auc_matches_per_user_sklearn():
  y, p, g = _data()
  got = metrics.group_auc(y, p, g)
  assert got == pytest.approx(_reference_gauc(y, p, g), abs=1e-12)
  # Per-user AUC ignores the between-user signal that the pooled AUC rewards.
  assert got < roc_auc_score(y, p) - 0.02
  # Group ids of any type; groups of one class are left out.
  assert metrics.group_auc(y, p, g.astype(str)) == pytest.approx(got, abs=1e-12)
  assert metrics.group_auc([1, 0, 1, 1], [0.9, 0.1, 0.2, 0.3], ['a', 'a', 'b', 'b']) == 1.0
  assert np.isnan(metrics.group_auc([1, 1], [0.2, 0.4], ['a', 'b']))
  with pytest.raises(ValueError, match='differ in length'):
    metrics.group_auc([1, 0], [0.5], ['a', 'b'])


def test_ece_and_gauc_through_tfma():
  y, p, g = _data(4000, 200, seed=1)
  frame = pd.DataFrame({'label': y, 'prediction': p, 'user_id': [f'u{u}' for u in g]})
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key='label', prediction_key='prediction')],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name='ExpectedCalibrationError', module=metrics.MODULE),
          tfma.MetricConfig(class_name='ExpectedCalibrationError', module=metrics.MODULE,
                            config='{"bins": 20, "equal_mass": true}'),
          tfma.MetricConfig(class_name='GroupAUC', module=metrics.MODULE),
          tfma.MetricConfig(class_name='AUC'),
      ])],
      slicing_specs=[tfma.SlicingSpec()])
  result = tfma.analyze_raw_data(frame, config)
  (_, by_output), = [(k, v) for k, v in result.slicing_metrics if k == ()]
  values = {name: v['doubleValue'] for name, v in by_output[''][''].items()}
  assert values['ece_10_width'] == pytest.approx(expected_calibration_error(p, y, 10), abs=1e-9)
  assert values['ece_20_mass'] == pytest.approx(
      expected_calibration_error(p, y, 20, equal_mass=True), abs=1e-9)
  assert values['ece_10_width'] > 0.01        # the data are miscalibrated on purpose
  assert values['gauc'] == pytest.approx(_reference_gauc(y, p, g), abs=1e-9)
  assert values['auc'] == pytest.approx(roc_auc_score(y, p), abs=2e-3)


def test_bad_configuration_is_refused():
  with pytest.raises(ValueError, match='at least one bin'):
    metrics.ExpectedCalibrationError(bins=0)


def test_zero_weights_leave_rows_out():
  # CVR is measured on clicked rows: weight 0 rows must not count, in ECE or in GAUC.
  y, p, g = _data(3000, 100, seed=2)
  w = (np.random.default_rng(5).random(y.size) < 0.4).astype(float)
  keep = w > 0
  for bins, mass in ((10, False), (20, True)):
    assert expected_calibration_error(p, y, bins, mass, weights=w) == pytest.approx(
        expected_calibration_error(p[keep], y[keep], bins, mass), abs=1e-12)
  assert metrics.group_auc(y, p, g, w) == pytest.approx(
      metrics.group_auc(y[keep], p[keep], g[keep]), abs=1e-12)
  with pytest.raises(ValueError, match='0/1'):
    metrics.group_auc(y, p, g, w * 2)
  with pytest.raises(ValueError, match='non-negative'):
    expected_calibration_error(p, y, weights=-w)


def test_ece_variants_and_gauc_share_one_pass_over_the_examples():
  # Four ECEs and GAUC on two outputs: one values collector per output for the ECEs and one
  # for GAUC (it also keeps the user id), not one per metric.
  from tensorflow_model_analysis.metrics import metric_specs
  ece = [tfma.MetricConfig(class_name='ExpectedCalibrationError', module=metrics.MODULE,
                           config=f'{{"bins": {b}, "equal_mass": {str(m).lower()}}}')
         for b in (10, 20) for m in (False, True)]
  spec = tfma.MetricsSpec(output_names=['a', 'b'], metrics=ece + [
      tfma.MetricConfig(class_name='GroupAUC', module=metrics.MODULE)])
  config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key='y')], metrics_specs=[spec])
  computations = metric_specs.to_computations([spec], config)
  collectors = [c for c in computations if isinstance(getattr(c, 'combiner', None),
                                                      metrics._ValuesCollector)]
  # TFMA's evaluator keeps one of each set of equal computations (same combiner class,
  # keys and preprocessors): what runs is the set.
  assert len(collectors) == 10
  assert sorted((c.keys[0].output_name, c.keys[0].name) for c in set(collectors)) == [
      ('a', '_values'), ('a', '_values_user_id'), ('b', '_values'), ('b', '_values_user_id')]
  derived = {k.name for c in computations for k in c.keys if not hasattr(c, 'combiner')}
  assert {'ece_10_width', 'ece_20_width', 'ece_10_mass', 'ece_20_mass', 'gauc'} <= derived


def _inputs(labels, predictions, weights=None):
  from tensorflow_model_analysis.metrics import metric_types
  return metric_types.StandardMetricInputs({
      'labels': labels, 'predictions': predictions, 'example_weights': weights,
      'features': {'user_id': np.array([b'u1'])}})


def _collector(output_name='', example_weighted=False, sub_key=None):
  from tensorflow_model_analysis.metrics import metric_types
  key = metric_types.MetricKey(name='_values', output_name=output_name, sub_key=sub_key,
                               example_weighted=example_weighted)
  return metrics._ValuesCollector(key, tfma.EvalConfig())


DIRECT = {
    'one output': (_inputs(np.array([1.0]), np.array([0.25], np.float32)), {}),
    'by output name': (_inputs({'a': np.array([0]), 'b': np.array([1])},
                               {'a': np.array([0.5]), 'b': np.array([0.125], np.float32)}),
                       {'output_name': 'b'}),
    'weighted': (_inputs({'b': np.array([1.0])}, {'b': np.array([0.75])},
                         {'b': np.array([0.0])}),
                 {'output_name': 'b', 'example_weighted': True}),
    'unweighted, weights given': (_inputs(np.array([0]), np.array([0.5]), np.array([3.0])),
                                  {}),
}


@pytest.mark.parametrize('case', sorted(DIRECT))
def test_direct_read_matches_tfma_lookup(case):
  # The collectors read the plain layout directly (the Evaluator's hot path); it must give
  # what TFMA's general lookup gives, and the collected values must be the same.
  from tensorflow_model_analysis.metrics import metric_util
  element, options = DIRECT[case]
  collector = _collector(**options)
  direct = collector._scalars(element)
  assert direct is not None
  (label, prediction, weight), = metric_util.to_label_prediction_example_weight(
      element, eval_config=tfma.EvalConfig(), flatten=True, allow_none=False,
      output_name=options.get('output_name', ''),
      example_weighted=options.get('example_weighted', False))
  assert direct == (float(label[0]), float(prediction[0]), float(weight[0]))
  acc = collector.add_input(collector.create_accumulator(), element)
  assert [a.tolist() for a in (acc.labels[0], acc.predictions[0], acc.weights[0])] == [
      [direct[0]], [direct[1]], [direct[2]]]


def test_other_layouts_take_tfma_lookup():
  from tensorflow_model_analysis.metrics import metric_types
  two_values = _inputs(np.array([0.0, 1.0]), np.array([0.2, 0.7]))
  assert _collector()._scalars(two_values) is None
  acc = _collector().add_input(metrics._Values(), two_values)
  assert np.concatenate(acc.labels).tolist() == [0.0, 1.0]
  assert np.concatenate(acc.weights).tolist() == [1.0, 1.0]
  assert _collector('a')._scalars(_inputs(np.array([1.0]), np.array([0.5]))) is None
  assert _collector(sub_key=metric_types.SubKey(class_id=0))._scalars(
      _inputs(np.array([1.0]), np.array([0.5]))) is None
  strings = _inputs(np.array([b'yes']), np.array([0.5]))
  assert _collector()._scalars(strings) is None
