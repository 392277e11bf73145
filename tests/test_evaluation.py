"""The Evaluator's TFMA configuration and the ECE computed from the calibration plot."""
import os

import numpy as np
from tensorflow_model_analysis.proto import metrics_for_slice_pb2

from pipeline import evaluation
from transform import feature_spec as fs

from conftest import REPO_ROOT


def test_eval_config():
  spec = fs.load(os.path.join(REPO_ROOT, 'specs', 'movielens_100k.yaml'))
  config = evaluation.eval_config(spec, min_auc=0.7, max_auc_drop=0.02)
  model = config.model_specs[0]
  assert model.label_key == 'liked_xf'  # the spec's derived label, via transform_features
  assert list(model.preprocessing_function_names) == ['transform_features']
  names = {m.class_name for m in config.metrics_specs[0].metrics}
  assert {'AUC', 'BinaryCrossentropy', 'Calibration', 'ExampleCount',
          'CalibrationPlot'} <= names
  auc = next(m for m in config.metrics_specs[0].metrics if m.class_name == 'AUC')
  (gate,) = auc.per_slice_thresholds
  assert len(gate.slicing_specs) == 1 and not gate.slicing_specs[0].feature_keys  # overall
  assert gate.threshold.value_threshold.lower_bound.value == 0.7
  assert gate.threshold.change_threshold.absolute.value == -0.02
  sliced = [list(s.feature_keys) for s in config.slicing_specs]
  assert sliced == [[]] + [[k] for k in spec.slice_keys]


def _buckets(preds, labels, n_buckets=1000):
  """TFMA-style calibration histogram of ``preds`` into ``n_buckets`` equal buckets."""
  out = []
  idx = np.minimum((preds * n_buckets).astype(int), n_buckets - 1)
  for b in range(n_buckets):
    m = idx == b
    bucket = metrics_for_slice_pb2.CalibrationHistogramBuckets.Bucket()
    bucket.lower_threshold_inclusive = b / n_buckets
    bucket.upper_threshold_exclusive = (b + 1) / n_buckets
    bucket.num_weighted_examples.value = float(m.sum())
    bucket.total_weighted_label.value = float(labels[m].sum())
    bucket.total_weighted_refined_prediction.value = float(preds[m].sum())
    out.append(bucket)
  return out


def test_ece_matches_direct_computation():
  rng = np.random.default_rng(0)
  preds = rng.beta(1, 20, 50_000)
  labels = (rng.random(50_000) < np.clip(preds * 1.3, 0, 1)).astype(float)  # miscalibrated
  bins = np.minimum((preds * 10).astype(int), 9)
  direct = sum(abs(labels[bins == b].sum() - preds[bins == b].sum())
               for b in range(10)) / len(preds)
  got = evaluation.expected_calibration_error(_buckets(preds, labels), bins=10)
  assert abs(got - direct) < 1e-3 * max(direct, 1e-3) + 1e-6
  assert got > 0.005
  # Perfectly calibrated in expectation: labels drawn from the predictions.
  fair = (rng.random(50_000) < preds).astype(float)
  assert evaluation.expected_calibration_error(_buckets(preds, fair)) < got / 3
  assert np.isnan(evaluation.expected_calibration_error([]))
