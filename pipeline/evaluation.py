"""The Evaluator's TFMA configuration, and reading its results back.

Metrics, for every model output (the primary ``probability`` and, for multi-task models,
``probability_<task>`` of the other tasks: with ESMM, ``probability`` is CTR's output and
``probability_cvr``, ``probability_ctcvr`` follow):

* AUC, AUC-PR, logloss (binary cross-entropy), Brier score (mean squared error of the
  probability), example count;
* calibration (sum of predictions over sum of labels), mean label and prediction, and the
  calibration plot (1000 buckets);
* ECE with 10 and 20 bins, equal-width and equal-mass, and GAUC (per-user AUC weighted by
  impressions, grouped by the spec's ``group_key``): custom TFMA metrics in
  :mod:`pipeline.metrics`.

CVR is measured where it is defined, on clicked rows: its output is weighted by the click
label (0 or 1). Slices: the whole test set and each of the spec's ``slice_keys``.

Gates (:class:`Gates`), on the primary output over the whole test set:

* AUC at or above ``min_auc``;
* |calibration - 1| at most ``max_calibration_gap``;
* ECE (10 equal-width bins) at most ``max_ece``;
* against the latest blessed model: AUC drops by at most ``max_auc_drop`` and logloss
  rises by at most ``max_logloss_rise``.

A second evaluation (:func:`gbdt_eval_config`, the pipeline's ``GbdtEvaluator``) compares
the candidate's primary output with the GBDT baseline (:mod:`trainer.gbdt`, LightGBM) on
the same test rows: AUC at least the baseline's plus ``gbdt_auc_margin``, logloss at most
the baseline's plus ``gbdt_max_logloss_rise`` (:func:`gbdt_verdict`).
``components.blessing_gate`` blesses the candidate only if both evaluations do.

Labels are read through the model's ``transform_features`` signature (``<label>_xf``),
so a label derived by the spec (``rating >= 4``) works like a raw one.
"""

from __future__ import annotations

import dataclasses
import json

from typing import Dict, List, Optional

import tensorflow_model_analysis as tfma

from pipeline import metrics as custom_metrics
from serving import signatures as sig
from transform import feature_spec as fs

PRIMARY_OUTPUT = sig.PROBABILITY
CANDIDATE = 'candidate'
GBDT_BASELINE = 'gbdt'
ECE_GATE_METRIC = 'ece_10_width'
ECE_VARIANTS = ((10, False), (20, False), (10, True), (20, True))


@dataclasses.dataclass(frozen=True)
class Gates:
  """The Evaluator's blessing conditions (see the module docstring)."""
  min_auc: float = 0.6
  max_calibration_gap: float = 0.05
  max_ece: float = 0.02
  max_auc_drop: float = 0.01
  max_logloss_rise: float = 0.002
  # Against the GBDT baseline: AUC(candidate) - AUC(gbdt) >= gbdt_auc_margin (negative:
  # a tolerated shortfall) and logloss(candidate) - logloss(gbdt) <= gbdt_max_logloss_rise.
  gbdt_auc_margin: float = 0.0
  gbdt_max_logloss_rise: float = 0.0

  def __post_init__(self):
    for f in dataclasses.fields(self):
      v = getattr(self, f.name)
      if (not isinstance(v, (int, float)) or v != v or abs(v) == float('inf')
          or (v < 0 and f.name != 'gbdt_auc_margin')):
        raise ValueError(f'gate {f.name} must be a finite'
                         f'{"" if f.name == "gbdt_auc_margin" else " non-negative"} number, '
                         f'got {v!r}')


@dataclasses.dataclass(frozen=True)
class Output:
  """One model output the Evaluator measures: its key in ``serving_default``, its label,
  and the 0/1 feature that selects its rows (None: every row)."""
  key: str
  label: str
  given: Optional[str] = None


def outputs(spec: fs.FeatureSpec, tasks: str = 'auto') -> List[Output]:
  """The outputs the Evaluator measures for this spec and task layout (trainer/export.py
  writes them): ``probability``, then ``probability_<task>`` for every task but the first.
  The first task's output is ``probability`` itself (the export writes the same tensor
  under both names), so it is measured once, as the primary output."""
  from trainer.models.heads import task_layout
  _, layout = task_layout(spec, tasks)
  out = [Output(PRIMARY_OUTPUT, layout[0].target)]
  out += [Output(sig.probability(t.key), t.target, t.given) for t in layout[1:]]
  return out


def primary_task(spec: fs.FeatureSpec, tasks: str = 'auto') -> Optional[str]:
  """The task whose output ``probability`` is (``ctr``), or None for a one-task model."""
  from trainer.models.heads import task_layout
  _, layout = task_layout(spec, tasks)
  return layout[0].key if len(layout) > 1 else None


def _metric(class_name: str, module: str = '', **config) -> tfma.MetricConfig:
  return tfma.MetricConfig(class_name=class_name, module=module,
                           config=json.dumps(config) if config else '')


def _metrics(spec: fs.FeatureSpec) -> List[tfma.MetricConfig]:
  out = [
      _metric('ExampleCount'),
      _metric('AUC'),
      _metric('AUCPrecisionRecall', name='auc_pr'),
      _metric('BinaryCrossentropy', name='logloss'),
      _metric('MeanSquaredError', name='brier'),
      _metric('Calibration'),
      _metric('MeanLabel'),
      _metric('MeanPrediction'),
      _metric('CalibrationPlot', num_buckets=1000),
  ]
  out += [_metric('ExpectedCalibrationError', custom_metrics.MODULE, bins=bins,
                  equal_mass=mass) for bins, mass in ECE_VARIANTS]
  if spec.group_key:
    out.append(_metric('GroupAUC', custom_metrics.MODULE, group_key=spec.group_key))
  return out


def _gate(metric: tfma.MetricConfig, threshold: tfma.MetricThreshold) -> None:
  """Gates hold on the whole test set, not on each (small) slice."""
  metric.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
      slicing_specs=[tfma.SlicingSpec()], threshold=threshold))


def _add_gates(metrics: List[tfma.MetricConfig], gates: Gates) -> None:
  by_name = {}
  for m in metrics:
    name = json.loads(m.config).get('name') if m.config else None
    if m.class_name == 'ExpectedCalibrationError':
      c = json.loads(m.config)
      name = f'ece_{c["bins"]}_{"mass" if c["equal_mass"] else "width"}'
    by_name[name or m.class_name] = m
  _gate(by_name['AUC'], tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(lower_bound={'value': gates.min_auc})))
  _gate(by_name['AUC'], tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.HIGHER_IS_BETTER,
      absolute={'value': -gates.max_auc_drop})))
  _gate(by_name['Calibration'], tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(
          lower_bound={'value': 1 - gates.max_calibration_gap},
          upper_bound={'value': 1 + gates.max_calibration_gap})))
  _gate(by_name[ECE_GATE_METRIC], tfma.MetricThreshold(
      value_threshold=tfma.GenericValueThreshold(upper_bound={'value': gates.max_ece})))
  _gate(by_name['logloss'], tfma.MetricThreshold(change_threshold=tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.LOWER_IS_BETTER,
      absolute={'value': gates.max_logloss_rise})))


def eval_config(spec: fs.FeatureSpec, gates: Gates = Gates(),
                tasks: str = 'auto') -> tfma.EvalConfig:
  outs = outputs(spec, tasks)
  primary = _metrics(spec)
  _add_gates(primary, gates)
  if len(outs) == 1:
    # TFMA unwraps a one-key prediction dict into its array: name the key instead.
    model = tfma.ModelSpec(
        signature_name=sig.DEFAULT,
        preprocessing_function_names=[sig.TRANSFORM_FEATURES],
        prediction_key=PRIMARY_OUTPUT, label_key=outs[0].label)
    specs = [tfma.MetricsSpec(metrics=primary)]
  else:
    model = tfma.ModelSpec(
        signature_name=sig.DEFAULT,
        preprocessing_function_names=[sig.TRANSFORM_FEATURES],
        label_keys={o.key: o.label for o in outs},
        example_weight_keys={o.key: o.given for o in outs if o.given})
    specs = [tfma.MetricsSpec(output_names=[PRIMARY_OUTPUT], metrics=primary)]
  plain = [o.key for o in outs[1:] if not o.given]
  if plain:
    specs.append(tfma.MetricsSpec(output_names=plain, metrics=_metrics(spec)))
  given = [o.key for o in outs if o.given]
  if given:
    specs.append(tfma.MetricsSpec(
        output_names=given, metrics=_metrics(spec),
        example_weights=tfma.ExampleWeightOptions(weighted=True, unweighted=False)))
  return tfma.EvalConfig(
      model_specs=[model], metrics_specs=specs,
      slicing_specs=[tfma.SlicingSpec()]
      + [tfma.SlicingSpec(feature_keys=[k]) for k in spec.slice_keys])


# The GbdtEvaluator's frame (components.gbdt_evaluator): one row per test example, the
# primary label and each model's probability of it.
GBDT_LABEL_COLUMN = 'label'
GBDT_PREDICTION_COLUMNS = {CANDIDATE: sig.probability(CANDIDATE),
                           GBDT_BASELINE: sig.probability(GBDT_BASELINE)}


def gbdt_eval_config() -> tfma.EvalConfig:
  """The candidate's primary output against the GBDT baseline's on the same test rows,
  for TFMA's model-agnostic evaluation of their predictions
  (``tfma.analyze_raw_data`` over the GbdtEvaluator's frame): AUC, logloss, AUC-PR,
  Brier score, calibration and ECE of both, and each of the candidate's minus the
  baseline's (``auc_diff``, ...). TFMA refuses change thresholds without a model to
  load, so the GBDT gates are applied to those differences by :func:`gbdt_verdict`."""

  def model(name: str) -> tfma.ModelSpec:
    return tfma.ModelSpec(name=name, is_baseline=name == GBDT_BASELINE,
                          prediction_key=GBDT_PREDICTION_COLUMNS[name],
                          label_key=GBDT_LABEL_COLUMN)

  metrics = [_metric('ExampleCount'), _metric('AUC'),
             _metric('BinaryCrossentropy', name='logloss'),
             _metric('AUCPrecisionRecall', name='auc_pr'),
             _metric('MeanSquaredError', name='brier'), _metric('Calibration'),
             _metric('ExpectedCalibrationError', custom_metrics.MODULE, bins=10,
                     equal_mass=False)]
  return tfma.EvalConfig(
      model_specs=[model(CANDIDATE), model(GBDT_BASELINE)],
      metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
      slicing_specs=[tfma.SlicingSpec()])


def gbdt_verdict(candidate: Dict[str, float], gates: Gates = Gates()) -> Dict[str, object]:
  """The GBDT gates on the candidate's metrics (with ``auc_diff`` and ``logloss_diff``,
  from :func:`overall_metrics` of the GbdtEvaluator's output): AUC at least the
  baseline's plus ``gbdt_auc_margin``, logloss at most the baseline's plus
  ``gbdt_max_logloss_rise``. A missing or NaN difference fails its gate."""
  rows = []
  for name, metric, higher, bound in (
      ('beats GBDT on AUC', 'auc', True, gates.gbdt_auc_margin),
      ('beats GBDT on logloss', 'logloss', False, gates.gbdt_max_logloss_rise)):
    value = candidate.get(f'{metric}_diff')
    ok = value is not None and value == value and (value >= bound if higher
                                                   else value <= bound)
    condition = (f'AUC - GBDT\'s AUC >= {bound:+g}' if higher
                 else f'logloss - GBDT\'s logloss <= {bound:+g}')
    if value is None or value != value:
      why = f'{metric}_diff is missing'
    else:
      why = ('within bound' if ok else
             f'{metric} changed by {value:+.4f} against the GBDT baseline; allowed '
             f'{"at least" if higher else "at most"} {bound:+.4f}')
    rows.append({'gate': name, 'condition': condition, 'metric': f'{metric}_diff',
                 'value': value, 'applied': True, 'passed': bool(ok), 'why': why})
  return {'blessed': all(r['passed'] for r in rows), 'gates': rows}


def overall_metrics(evaluation_uri: str, result=None,
                    model_name: Optional[str] = None) -> Dict[str, float]:
  """Every metric of the unsliced test set: the primary output's by name (``auc``,
  ``logloss``, ``ece_10_width``, ...), the others as ``<output>/<name>``
  (``probability_cvr/auc``). ``result``: the already loaded ``tfma.load_eval_result``.
  With a baseline, the candidate's (with ``<name>_diff``, candidate minus baseline), or
  ``model_name``'s."""
  result = result or tfma.load_eval_result(evaluation_uri, model_name=model_name)
  out: Dict[str, float] = {}
  for slice_key, metrics in result.slicing_metrics:
    if slice_key != ():
      continue
    for output, by_sub in metrics.items():
      prefix = '' if output in ('', PRIMARY_OUTPUT) else f'{output}/'
      for _, values in by_sub.items():
        for name, value in values.items():
          if 'doubleValue' in value:
            out[prefix + name] = float(value['doubleValue'])  # 'NaN' comes as a string
  return out
