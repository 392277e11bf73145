"""components/gbdt_evaluator.py: the candidate and the GBDT baseline scored on the same
test rows, TFMA's metrics of both and their difference."""
import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score
import tensorflow as tf

from trainer import gbdt
from transform import local


def test_evaluator_scores_both_models_on_the_same_rows(raw_splits, gbdt_run, small_dnn,
                                                       tmp_path):
  """The candidate through its serving signature, the baseline on the raw columns, the
  label from the raw column; TFMA's metrics of both and their difference."""
  from components import gbdt_evaluator
  from pipeline import evaluation
  spec, tables, folders = raw_splits
  model_dir, _ = small_dnn
  columns = gbdt_evaluator.score(model_dir, gbdt_run['serving_model_dir'], folders['test'], spec)
  test = tables['test']
  y = columns[evaluation.GBDT_LABEL_COLUMN]
  np.testing.assert_array_equal(y, test.column('clicked').to_numpy())
  served = tf.saved_model.load(model_dir).signatures['serving_default'](
      examples=tf.constant(local.serialize_examples(test, spec)))['probability']
  np.testing.assert_allclose(columns['probability_candidate'], served.numpy().ravel(),
                             rtol=1e-5)
  x, _ = gbdt.read_split(folders['test'], spec)
  np.testing.assert_allclose(columns['probability_gbdt'],
                             gbdt.GbdtModel.load(gbdt_run['serving_model_dir']).predict(x))
  gates = evaluation.Gates(gbdt_auc_margin=-1.0, gbdt_max_logloss_rise=1.0)
  report = gbdt_evaluator.evaluate(columns, str(tmp_path / 'eval'), gates)
  assert report['blessed'] is True and report['rows'] == test.num_rows
  for name in ('candidate', 'gbdt'):
    p = columns[evaluation.GBDT_PREDICTION_COLUMNS[name]]
    assert report[name]['auc'] == pytest.approx(roc_auc_score(y, p), abs=2e-3)
    assert report[name]['logloss'] == pytest.approx(log_loss(y, p), rel=1e-3)
  assert report['candidate']['auc_diff'] == pytest.approx(
      report['candidate']['auc'] - report['gbdt']['auc'], abs=1e-9)
