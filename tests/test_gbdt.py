"""The GBDT baseline's Trainer (trainer/gbdt.py): TF-DF gradient boosted trees on the
Transform output, early-stopped, calibrated and exported with the deep model's
signatures; and the blessing gate that joins its Evaluator's verdict with the other's."""
import json
import os

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score
import tensorflow as tf

from trainer import gbdt
from trainer import model as model_lib
from transform import local


def test_config_rejects_bad_settings():
  with pytest.raises(ValueError, match='unknown setting'):
    gbdt.config_from_dict({'trees': 10})
  with pytest.raises(ValueError, match='shrinkage=0'):
    gbdt.config_from_dict({'shrinkage': 0})
  with pytest.raises(ValueError, match='max_categorical_values=1'):
    gbdt.config_from_dict({'max_categorical_values': 1})


def test_run_fn_trains_early_stops_calibrates_and_exports(small_transformed, tmp_path):
  spec, tables, paths, _ = small_transformed
  config = {'feature_spec': spec.to_dict(), 'gbdt': {'num_trees': 400}}
  args = local.fn_args(paths, str(tmp_path), config, train_steps=1, eval_steps=1)
  gbdt.run_fn(args)

  report = json.load(open(os.path.join(args.model_run_dir, gbdt.REPORT_FILE)))
  assert report['model'] == 'gbdt'
  assert report['train_rows'] == tables['train'].num_rows
  assert report['eval_rows'] == tables['eval'].num_rows
  # Early stopping on the eval split chose fewer trees than allowed.
  assert 1 <= report['trees'] < 400
  # Small fields are categorical; the 2000-bucket hashed ids and the large vocabularies
  # are numeric ids; sequences are not used.
  cards = model_lib.cardinalities(spec, __import__('tensorflow_transform').TFTransformOutput(
      paths['transform_graph']))
  assert 'gender_xf' in report['inputs']['categorical']
  assert {'user_id_xf', 'ad_id_xf'} <= set(report['inputs']['ids'])
  assert all(cards[n[:-3]] > 256 for n in report['inputs']['ids'])
  assert not any(n.startswith('seq') for n in sum(report['inputs'].values(), []))
  assert report['calibration']['tasks']['clicked']['temperature'] > 0

  loaded = tf.saved_model.load(args.serving_model_dir)
  assert set(loaded.signatures) == {'serving_default', 'transform_features', 'predict_raw',
                                    'classification', 'regression'}
  test = tables['test']
  p = loaded.signatures['serving_default'](examples=tf.constant(
      local.serialize_examples(test, spec)))['probability'].numpy().ravel()
  y = test.column('clicked').to_numpy()
  assert np.all((p > 0) & (p < 1))
  base = tables['train'].column('clicked').to_numpy().mean()
  assert roc_auc_score(y, p) > 0.6
  assert log_loss(y, p) < log_loss(y, np.full(len(y), base))
  # Calibrated on the eval split: the mean prediction is near the test click rate.
  assert abs(p.mean() / y.mean() - 1) < 0.15


def test_served_scores_are_the_forest_through_the_calibrator(small_transformed, tmp_path):
  """The SavedModel's probability is the trained forest's, through the fitted calibrator:
  training and serving prepare the features the same way."""
  import tensorflow_transform as tft
  from trainer.layers import calibration
  spec, tables, paths, _ = small_transformed
  tfo = tft.TFTransformOutput(paths['transform_graph'])
  acc = local.data_accessor()
  inputs = gbdt.ForestInputs.from_spec(spec, model_lib.cardinalities(spec, tfo), 256)
  train = gbdt.read_split([paths['train']], acc, tfo, spec)
  valid = gbdt.read_split([paths['eval']], acc, tfo, spec)
  forest = gbdt.train_forest(inputs, gbdt.GbdtConfig(num_trees=30), train, valid)
  test = gbdt.read_split([paths['test']], acc, tfo, spec)
  p_forest = gbdt.predict_forest(forest, inputs, test[0])
  z = np.log(p_forest) - np.log1p(-p_forest)
  calibrator = calibration.make_calibrator('platt').fit(z, test[1])
  out_dir = str(tmp_path / 'model')
  from trainer import export
  export.export_serving_model(
      gbdt.ForestServing(forest, calibrator.layer('clicked'), inputs), tfo, spec, out_dir)
  served = tf.saved_model.load(out_dir).signatures['serving_default'](
      examples=tf.constant(local.serialize_examples(tables['test'], spec)))
  np.testing.assert_allclose(served['probability'].numpy().ravel(), calibrator.predict(z),
                             rtol=2e-4, atol=1e-6)


class _Blessing:
  """A ModelBlessing artifact as the Evaluator leaves it."""

  def __init__(self, uri, blessed, model_id=7):
    from tfx.types import standard_artifacts
    self.artifact = standard_artifacts.ModelBlessing()
    self.artifact.uri = str(uri)
    self.artifact.set_int_custom_property('blessed', int(blessed))
    self.artifact.set_int_custom_property('current_model_id', model_id)
    self.artifact.set_string_custom_property('current_model', '/models/7')


@pytest.mark.parametrize('evaluator,gbdt_ok', [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_blessing_gate_blesses_only_when_both_do(evaluator, gbdt_ok, tmp_path):
  from tfx.types import standard_artifacts
  from components import blessing_gate
  out = standard_artifacts.ModelBlessing()
  out.uri = str(tmp_path / 'out')
  ok = blessing_gate.combine({'evaluator': _Blessing(tmp_path / 'a', evaluator).artifact,
                              'gbdt': _Blessing(tmp_path / 'b', gbdt_ok).artifact}, out)
  assert ok is bool(evaluator and gbdt_ok)
  assert blessing_gate.is_blessed(out) is ok
  assert os.path.isfile(out.uri + ('/BLESSED' if ok else '/NOT_BLESSED'))
  # What the Pusher and the latest-blessed-model resolver read.
  assert out.get_int_custom_property('current_model_id') == 7
  assert out.get_string_custom_property('current_model') == '/models/7'
  assert out.get_int_custom_property('gbdt_blessed') == gbdt_ok
  detail = json.load(open(os.path.join(out.uri, blessing_gate.REPORT_FILE)))
  assert detail['inputs'] == {'evaluator': bool(evaluator), 'gbdt': bool(gbdt_ok)}
