"""The Evaluator's TFMA configuration, and reading its results back.

Metrics: AUC, binary cross-entropy (logloss), calibration (mean prediction over mean
label), mean label and prediction, example count, and the calibration plot, from which
:func:`expected_calibration_error` computes ECE. Gates: AUC at or above ``min_auc``, and
no AUC drop larger than ``max_auc_drop`` against the latest blessed model.

The label is read through the model's ``transform_features`` signature
(``<label>_xf``), so a label derived by the spec (``rating >= 4``) works like a raw one.
"""

from __future__ import annotations

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from typing import Dict, Optional  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow_model_analysis as tfma  # noqa: E402

from transform import feature_spec as fs  # noqa: E402
from transform.preprocessing import transformed_name  # noqa: E402


def eval_config(spec: fs.FeatureSpec, min_auc: float, max_auc_drop: float) -> tfma.EvalConfig:
  auc_threshold = tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': min_auc}),
      change_threshold=tfma.GenericChangeThreshold(
          direction=tfma.MetricDirection.HIGHER_IS_BETTER,
          absolute={'value': -max_auc_drop}))
  metrics = [
      tfma.MetricConfig(class_name='ExampleCount'),
      # Gates hold on the whole test set, not on each (small) slice.
      tfma.MetricConfig(class_name='AUC', per_slice_thresholds=[
          tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()],
                                       threshold=auc_threshold)]),
      tfma.MetricConfig(class_name='BinaryCrossentropy', config='{"name": "logloss"}'),
      tfma.MetricConfig(class_name='Calibration'),
      tfma.MetricConfig(class_name='MeanLabel'),
      tfma.MetricConfig(class_name='MeanPrediction'),
      tfma.MetricConfig(class_name='CalibrationPlot', config='{"num_buckets": 1000}'),
  ]
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name='serving_default',
          prediction_key='probability',
          label_key=transformed_name(spec.primary_label.name),
          preprocessing_function_names=['transform_features'])],
      metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
      slicing_specs=[tfma.SlicingSpec()]
      + [tfma.SlicingSpec(feature_keys=[k]) for k in spec.slice_keys])


def expected_calibration_error(plot_buckets, bins: int = 10) -> float:
  """Equal-width ECE from TFMA's calibration-plot buckets.

  ``plot_buckets``: TFMA ``CalibrationHistogramBuckets`` entries (lower/upper threshold,
  weighted examples, total weighted label and refined prediction). Buckets are merged
  into ``bins`` equal-width bins of the prediction; ECE = sum over bins of
  |sum(label) - sum(prediction)| / N.
  """
  n = 0.0
  labels = np.zeros(bins)
  preds = np.zeros(bins)
  for b in plot_buckets:
    w = b.num_weighted_examples.value
    if not w:
      continue
    mean_pred = b.total_weighted_refined_prediction.value / w
    i = min(int(mean_pred * bins), bins - 1) if mean_pred > 0 else 0
    labels[i] += b.total_weighted_label.value
    preds[i] += b.total_weighted_refined_prediction.value
    n += w
  return float(np.abs(labels - preds).sum() / n) if n else float('nan')


def overall_metrics(evaluation_uri: str) -> Dict[str, float]:
  """AUC, logloss, calibration, ... and ECE of the unsliced test set."""
  result = tfma.load_eval_result(evaluation_uri)
  out: Dict[str, float] = {}
  for slice_key, metrics in result.slicing_metrics:
    if slice_key == ():
      for _, by_sub in metrics.items():
        for _, values in by_sub.items():
          for name, value in values.items():
            if 'doubleValue' in value:
              out[name] = value['doubleValue']
  for slice_key, plot in _plots(evaluation_uri):
    if slice_key == ():
      out['ece'] = expected_calibration_error(plot)
  return out


def _plots(evaluation_uri: str):
  for plots in tfma.load_plots(evaluation_uri):
    key = tfma.slicer.deserialize_slice_key(plots.slice_key)
    for kv in plots.plot_keys_and_values:
      if kv.value.HasField('calibration_histogram_buckets'):
        yield key, kv.value.calibration_histogram_buckets.buckets


def is_blessed(blessing_uri: str) -> Optional[bool]:
  if os.path.exists(os.path.join(blessing_uri, 'BLESSED')):
    return True
  if os.path.exists(os.path.join(blessing_uri, 'NOT_BLESSED')):
    return False
  return None
