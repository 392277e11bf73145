"""Custom TFMA metrics for the Evaluator: ECE with equal-width or equal-mass bins, and GAUC.

TFMA has AUC, AUC-PR, calibration (mean prediction over mean label) and the calibration
plot, but no expected calibration error with equal-mass bins and no grouped AUC, so these
two are written here as TFMA metrics (Beam combiners over ``StandardMetricInputs``).
They are registered on import, and ``MetricConfig(class_name=..., module='pipeline.metrics')``
names them (:func:`pipeline.evaluation.eval_config`).

* ``ExpectedCalibrationError(bins=10, equal_mass=False)``: sum over bins of
  |sum(label) - sum(prediction)| / N, computed by
  :func:`trainer.layers.calibration.expected_calibration_error`. Default names:
  ``ece_10_width``, ``ece_20_mass``, ...
* ``GroupAUC(group_key='user_id')``: the AUC of each group (user) that has both a positive
  and a negative example, averaged with weights equal to the group's number of examples
  (impressions). Groups with only one class have no AUC and are left out; examples
  without the group feature form one group of their own.

Both keep every prediction, label and example weight of a slice (and the group ids) in
one shared accumulator per output and slice, so they are exact: about 24 bytes per
example per slice, plus the id for GAUC. ECE applies example weights; GAUC takes 0/1
weights only (it leaves out the rows of weight 0, as CVR leaves out the non-clicks).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import util

from trainer.layers.calibration import expected_calibration_error

MODULE = __name__


def group_auc(labels, predictions, groups, weights=None) -> float:
  """Impression-weighted mean of the per-group AUC (ties count one half), over the groups
  holding both classes; NaN when no group does. ``weights``: 0/1, rows of 0 left out."""
  y = np.asarray(labels, np.float64).ravel()
  p = np.asarray(predictions, np.float64).ravel()
  g = np.asarray(groups).ravel()
  if not (y.size == p.size == g.size):
    raise ValueError(f'labels, predictions and groups differ in length: '
                     f'{y.size}, {p.size}, {g.size}')
  if weights is not None:
    w = np.asarray(weights, np.float64).ravel()
    if w.size != y.size or not np.all((w == 0) | (w == 1)):
      raise ValueError('GAUC takes one 0/1 example weight per row')
    keep = w > 0
    y, p, g = y[keep], p[keep], g[keep]
  if y.size == 0:
    return float('nan')
  _, gid = np.unique(g, return_inverse=True)
  order = np.lexsort((p, gid))
  gs, ps, ys = gid[order], p[order], y[order]
  pos = np.arange(y.size, dtype=np.float64)
  # Tied (group, prediction) runs share the mean of their positions.
  new_run = np.ones(y.size, bool)
  new_run[1:] = (gs[1:] != gs[:-1]) | (ps[1:] != ps[:-1])
  run = np.cumsum(new_run) - 1
  mean_pos = np.bincount(run, pos) / np.bincount(run)
  n_groups = gs[-1] + 1
  size = np.bincount(gs, minlength=n_groups).astype(np.float64)
  start = np.concatenate([[0.0], np.cumsum(size)[:-1]])
  rank = mean_pos[run] - start[gs] + 1.0                     # 1-based rank inside its group
  n_pos = np.bincount(gs, ys, minlength=n_groups)
  n_neg = size - n_pos
  rank_sum = np.bincount(gs, rank * ys, minlength=n_groups)
  ok = (n_pos > 0) & (n_neg > 0)
  if not ok.any():
    return float('nan')
  auc = (rank_sum[ok] - n_pos[ok] * (n_pos[ok] + 1) / 2) / (n_pos[ok] * n_neg[ok])
  return float(np.sum(auc * size[ok]) / np.sum(size[ok]))


class _Values:
  """Accumulator: lists of label and prediction arrays (and group ids)."""
  __slots__ = ('labels', 'predictions', 'weights', 'groups')

  def __init__(self):
    self.labels: List[np.ndarray] = []
    self.predictions: List[np.ndarray] = []
    self.weights: List[np.ndarray] = []
    self.groups: List[np.ndarray] = []


class _ValuesCollector(beam.CombineFn):
  """Collects one model output's labels, predictions and weights (and the group ids with
  ``group_key``) under a private key (``_values`` or ``_values_<group_key>``).

  Every ECE variant of an output shares one collector, and every GAUC another: TFMA
  removes duplicate computations (same combiner class, keys and preprocessors), and each
  metric is then a derived computation on the collected arrays. So an example is read
  once per output and slice, not once per metric (the four ECEs and GAUC made the
  Evaluator about a third slower before)."""

  def __init__(self, key: metric_types.MetricKey, eval_config: Optional[config_pb2.EvalConfig],
               group_key: Optional[str] = None):
    self._key = key
    self._eval_config = eval_config
    self._group_key = group_key

  def create_accumulator(self) -> _Values:
    return _Values()

  def _scalars(self, element: metric_types.StandardMetricInputs
               ) -> Optional[Tuple[float, float, float]]:
    """The example's (label, prediction, weight) read directly, where it has the plain
    layout: one model, no sub key, and one numeric label, prediction (and weight) for
    this output (by its name where it has one). None otherwise, for TFMA's general
    lookup. Why: TFMA calls ``add_input`` once per example, slice and output, and its
    general lookup (``to_label_prediction_example_weight``: model, output and sub-key
    resolution, label vocabularies, class weights) was most of these collectors' cost."""
    key = self._key
    if key.sub_key is not None or key.model_name:
      return None
    values = [element.label, element.prediction]
    if key.example_weighted:
      values.append(element.example_weight)
    out = []
    for v in values:
      if key.output_name:
        if not isinstance(v, dict):
          return None
        v = v.get(key.output_name)
      if not isinstance(v, np.ndarray) or v.size != 1 or v.dtype.kind not in 'biuf':
        return None
      out.append(float(v.reshape(-1)[0]))
    if not key.example_weighted:
      out.append(1.0)
    return out[0], out[1], out[2]

  def add_input(self, acc: _Values, element: metric_types.StandardMetricInputs) -> _Values:
    scalars = self._scalars(element)
    rows = [tuple(np.array([v]) for v in scalars)] if scalars is not None else \
        metric_util.to_label_prediction_example_weight(
            element, eval_config=self._eval_config, model_name=self._key.model_name,
            output_name=self._key.output_name, sub_key=self._key.sub_key,
            example_weighted=self._key.example_weighted, flatten=True, allow_none=False)
    for label, prediction, weight in rows:
      label = np.asarray(label, np.float64).ravel()
      weight = np.asarray(weight, np.float64).ravel()
      acc.labels.append(label)
      acc.predictions.append(np.asarray(prediction, np.float64).ravel())
      acc.weights.append(weight if weight.shape == label.shape else
                         np.broadcast_to(weight, label.shape).copy())
      if self._group_key:
        group = util.get_by_keys(element.features, [self._group_key], optional=True)
        if group is None:
          raise ValueError(f'GAUC: the examples have no feature "{self._group_key}" to '
                           f'group by')
        group = np.asarray(group).ravel()
        acc.groups.append(group[:1] if group.size else np.asarray([b'']))
    return acc

  def merge_accumulators(self, accs) -> _Values:
    out = _Values()
    for a in accs:
      out.labels += a.labels
      out.predictions += a.predictions
      out.weights += a.weights
      out.groups += a.groups
    return out

  def compact(self, acc: _Values) -> _Values:
    out = _Values()
    if acc.labels:
      out.labels = [np.concatenate(acc.labels)]
      out.predictions = [np.concatenate(acc.predictions)]
      out.weights = [np.concatenate(acc.weights)]
      if acc.groups:
        out.groups = [np.concatenate(acc.groups)]
    return out

  def extract_output(self, acc: _Values) -> Dict[metric_types.MetricKey, Optional[tuple]]:
    """``{key: (labels, predictions, weights, groups or None)}``, or None: no examples."""
    acc = self.compact(acc)
    if not acc.labels:
      return {self._key: None}
    groups = acc.groups[0] if acc.groups else None
    return {self._key: (acc.labels[0], acc.predictions[0], acc.weights[0], groups)}


def _computation(value_fn, group_key_option: bool = False):
  """TFMA's computations function for a metric computed from all of an output's values:
  the shared collector and a derived computation ``value_fn(labels, predictions, weights,
  groups, **options)``. With ``group_key_option`` the metric's ``group_key`` option names
  the feature the collector also keeps."""
  def computations(name: str = '', eval_config: Optional[config_pb2.EvalConfig] = None,
                   model_name: str = '', output_name: str = '',
                   sub_key: Optional[metric_types.SubKey] = None,
                   example_weighted: bool = False,
                   **options) -> metric_types.MetricComputations:
    group_key = options.get('group_key') if group_key_option else None
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    values_key = key._replace(name=f'_values_{group_key}' if group_key else '_values')
    collect = metric_types.MetricComputation(
        keys=[values_key],
        preprocessors=([metric_types.FeaturePreprocessor(feature_keys=[group_key])]
                       if group_key else None),
        combiner=_ValuesCollector(values_key, eval_config, group_key))

    def result(metrics):
      values = metrics[values_key]
      return {key: float('nan') if values is None else value_fn(*values, **options)}

    return [collect, metric_types.DerivedMetricComputation(keys=[key], result=result)]
  return computations


_ece_computations = _computation(
    lambda labels, predictions, weights, groups, bins=10, equal_mass=False:
    expected_calibration_error(predictions, labels, bins, equal_mass, weights=weights))
_gauc_computations = _computation(
    lambda labels, predictions, weights, groups, group_key='user_id':
    group_auc(labels, predictions, groups, weights), group_key_option=True)


class ExpectedCalibrationError(metric_types.Metric):
  """ECE over ``bins`` equal-width bins of the prediction, or equal-mass bins (each holding
  N / bins examples) with ``equal_mass``. Named ``ece_<bins>_width|mass`` by default."""

  def __init__(self, name: Optional[str] = None, bins: int = 10, equal_mass: bool = False):
    if int(bins) < 1:
      raise ValueError(f'ECE needs at least one bin, got bins={bins}')
    name = name or f'ece_{int(bins)}_{"mass" if equal_mass else "width"}'
    super().__init__(metric_util.merge_per_key_computations(_ece_computations), name=name,
                     bins=int(bins), equal_mass=bool(equal_mass))


class GroupAUC(metric_types.Metric):
  """GAUC: per-group AUC weighted by the group's impressions; groups by ``group_key``, a raw
  feature of the examples (the user id by default)."""

  def __init__(self, name: str = 'gauc', group_key: str = 'user_id'):
    super().__init__(metric_util.merge_per_key_computations(_gauc_computations), name=name,
                     group_key=group_key)


metric_types.register_metric(ExpectedCalibrationError)
metric_types.register_metric(GroupAUC)
