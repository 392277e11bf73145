"""``GbdtEvaluator``: the candidate against the GBDT baseline on the same test rows.

The baseline (:mod:`trainer.gbdt`) is LightGBM, which is not a SavedModel, so TFX's
Evaluator cannot load it. This component scores the raw ``split`` (ExampleGen's test
split) with both models, the candidate through its ``serving_default`` signature
(serialized ``tf.Example``, exactly as it is served) and the baseline on the same rows'
raw columns. TFMA then computes the same metrics for both, and the candidate's minus the
baseline's, over that frame (``tfma.analyze_raw_data`` with
:func:`pipeline.evaluation.gbdt_eval_config`): its output is a standard TFMA result in the
``evaluation`` artifact, which ``tfma.load_eval_result`` and
:func:`pipeline.evaluation.overall_metrics` read like the Evaluator's. The GBDT gates
(:func:`pipeline.evaluation.gbdt_verdict`) give the ``blessing``, with
``gbdt_evaluation.json`` beside it (both models' metrics, the gates, why).
"""

# No "from __future__ import annotations": the @component decorator reads real annotations.

import json
from typing import Dict

import numpy as np
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

REPORT_FILE = 'gbdt_evaluation.json'
SCORE_BATCH = 4096


def score(model_dir: str, baseline_dir: str, split_uri: str, spec) -> Dict[str, np.ndarray]:
  """The primary label and both models' probabilities for every row of the split."""
  import pandas as pd
  import tensorflow as tf
  from pipeline import evaluation
  from trainer import gbdt
  from serving import signatures as sig
  from transform import examples
  serve = tf.saved_model.load(model_dir).signatures[sig.DEFAULT]
  baseline = gbdt.GbdtModel.load(baseline_dir)
  label = spec.primary_label
  names = gbdt.feature_columns(spec) + [label.column]
  candidate, frames = [], []
  for records in examples.serialized(split_uri):
    for i in range(0, len(records), SCORE_BATCH):
      out = serve(**{sig.EXAMPLES: tf.constant(records[i:i + SCORE_BATCH])})
      candidate.append(out[sig.PROBABILITY].numpy().reshape(-1))
    frames.append(examples.decode(records, names))
  if not frames:
    raise ValueError(f'no rows in {split_uri}')
  frame = pd.concat(frames, ignore_index=True)
  return {evaluation.GBDT_LABEL_COLUMN: label.values(frame[label.column]),
          evaluation.GBDT_PREDICTION_COLUMNS[evaluation.CANDIDATE]:
              np.concatenate(candidate).astype(np.float64),
          evaluation.GBDT_PREDICTION_COLUMNS[evaluation.GBDT_BASELINE]:
              baseline.predict(frame.drop(columns=[label.column]))}


def evaluate(columns: Dict[str, np.ndarray], output_uri: str, gates) -> Dict[str, object]:
  """TFMA's metrics of both models over ``columns`` (written to ``output_uri``) and the
  GBDT gates' verdict."""
  import pandas as pd
  import tensorflow_model_analysis as tfma
  from pipeline import evaluation
  tfma.analyze_raw_data(pd.DataFrame(columns), evaluation.gbdt_eval_config(), output_uri)
  candidate = evaluation.overall_metrics(output_uri, model_name=evaluation.CANDIDATE)
  baseline = evaluation.overall_metrics(output_uri, model_name=evaluation.GBDT_BASELINE)
  verdict = evaluation.gbdt_verdict(candidate, gates)
  return {**verdict, 'rows': int(len(columns[evaluation.GBDT_LABEL_COLUMN])),
          'candidate': candidate, 'gbdt': baseline}


@component
def GbdtEvaluator(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    baseline_model: InputArtifact[standard_artifacts.Model],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    split: Parameter[str] = 'test',
    config_json: Parameter[str] = '{}',
) -> None:
  """The candidate ``model`` against the GBDT ``baseline_model`` on the raw ``split``
  (``config_json``: ``feature_spec`` and ``gates``, the GBDT fields of
  :class:`pipeline.evaluation.Gates`)."""
  from tfx.utils import path_utils
  from components.blessing_gate import write_blessing
  from pipeline.evaluation import Gates
  from transform import feature_spec as fs
  config = json.loads(config_json)
  spec = fs.from_dict(config[fs.SPEC_KEY])
  columns = score(path_utils.serving_model_path(model.uri),
                  path_utils.serving_model_path(baseline_model.uri),
                  artifact_utils.get_split_uri([examples], split), spec)
  report = evaluate(columns, evaluation.uri, Gates(**config.get('gates', {})))
  report['split'] = split
  blessing.set_string_custom_property('baseline_model', baseline_model.uri)
  blessing.set_int_custom_property('baseline_model_id', baseline_model.id)
  write_blessing(blessing, model, report['blessed'], report, REPORT_FILE)
