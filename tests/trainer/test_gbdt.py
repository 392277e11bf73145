"""The GBDT baseline (trainer/gbdt.py: LightGBM on the raw splits, searched on eval,
calibrated), its evaluator (components/gbdt_evaluator.py: both models on the same test
rows), the raw-split reader they share (transform/examples.py), and the blessing gate
that joins the GBDT verdict with the others."""
import json
import os

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score
import tensorflow as tf

from trainer import gbdt
from trainer.args import TrainerArgs
from transform import examples, local


@pytest.fixture(scope='module')
def raw_splits(small_transformed, tmp_path_factory):
  """``small_transformed``'s tables as ExampleGen split folders."""
  spec, tables, _, _ = small_transformed
  return spec, tables, local.write_example_splits(
      tables, spec, str(tmp_path_factory.mktemp('raw_splits')))


@pytest.fixture(scope='module')
def trained(raw_splits, tmp_path_factory):
  """run_fn with a 4-trial search, as the GbdtTrainer runs it."""
  spec, tables, folders = raw_splits
  out = str(tmp_path_factory.mktemp('gbdt_run'))
  args = local.fn_args({'train': f'{folders["train"]}/*', 'eval': folders['eval'],
                        'transform_graph': ''}, out,
                       TrainerArgs(feature_spec=spec.to_dict(),
                                   gbdt={'trials': 4}).to_custom_config(),
                       train_steps=1, eval_steps=1)
  gbdt.run_fn(args)
  with open(os.path.join(args.model_run_dir, gbdt.REPORT_FILE)) as f:
    return args, json.load(f)


def test_config_rejects_bad_settings():
  with pytest.raises(ValueError, match='unknown setting'):
    gbdt.config_from_dict({'num_trees': 10})
  with pytest.raises(ValueError, match='trials=0'):
    gbdt.config_from_dict({'trials': 0})
  with pytest.raises(ValueError, match='tune_rows=10'):
    gbdt.config_from_dict({'tune_rows': 10})


def test_read_split_gives_the_tables_values(raw_splits):
  spec, tables, folders = raw_splits
  frame = examples.read_split(folders['test'], ['user_id', 'hour', 'feat_0', 'seq',
                                                'clicked', 'no_such_feature'])
  test = tables['test']
  assert len(frame) == test.num_rows
  assert list(frame['user_id']) == test.column('user_id').to_pylist()
  assert list(frame['hour']) == test.column('hour').to_pylist()
  np.testing.assert_allclose(frame['feat_0'].astype(float),
                             test.column('feat_0').to_numpy(), rtol=1e-6)
  assert list(frame['seq']) == test.column('seq').to_pylist()
  assert frame['no_such_feature'].isna().all()


def test_decode_leaves_an_absent_value_missing():
  def example(**kw):
    feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
               for k, v in kw.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
  frame = examples.decode([example(a='x', b='y'), example(a='z')])
  assert list(frame['a']) == ['x', 'z'] and list(frame['b']) == ['y', None]


def test_label_values_match_transform(small_transformed):
  """The raw-row label is Transform's ``<label>_xf``, thresholds included."""
  from transform import feature_spec as fs
  label = fs.Label('liked', 'rating', threshold=4.0)
  np.testing.assert_array_equal(label.values([5, 4, 3.5, None, '4']), [1, 1, 0, 0, 1])
  np.testing.assert_array_equal(fs.Label('c', 'c').values([1, 0, None, 0.7]), [1, 0, 0, 1])
  spec, tables, _, _ = small_transformed
  test = tables['test']
  np.testing.assert_array_equal(spec.primary_label.values(test.column('clicked').to_numpy()),
                                test.column('clicked').to_numpy())


def test_run_fn_searches_calibrates_and_saves(raw_splits, trained):
  spec, tables, folders = raw_splits
  args, report = trained
  assert report['model'] == 'lightgbm'
  assert report['train_rows'] == tables['train'].num_rows
  assert report['eval_rows'] == tables['eval'].num_rows
  # Four trials, best eval AUC first; LightGBM's defaults are among them.
  assert len(report['search']) == 4
  aucs = [t['eval_auc'] for t in report['search']]
  assert aucs == sorted(aucs, reverse=True)
  from trainer import boosting
  assert boosting.DEFAULT_PARAMS in [t['params'] for t in report['search']]
  assert report['params'] == report['search'][0]['params']
  assert report['val_auc'] == pytest.approx(aucs[0], abs=1e-9)
  assert report['calibration']['tasks']['clicked']['temperature'] > 0

  model = gbdt.GbdtModel.load(args.serving_model_dir)
  x, y = gbdt.read_split(folders['test'], spec)
  p = model.predict(x)
  assert np.all((p > 0) & (p < 1))
  # Measured: AUC 0.724, logloss 0.461 against the base rate's 0.514, mean prediction
  # 0.94 of the click rate (4 trials). The generated data's numeric and sequence terms
  # alone give about 0.64 AUC, so broken categoricals or a label mix-up fail this.
  assert roc_auc_score(y, p) > 0.70
  base = tables['train'].column('clicked').to_numpy().mean()
  assert log_loss(y, p) < log_loss(y, np.full(len(y), base)) - 0.02
  # Calibrated on the eval split: the mean prediction is near the test click rate.
  assert abs(p.mean() / y.mean() - 1) < 0.15


def test_saved_model_predicts_what_was_fitted(raw_splits, tmp_path):
  """Save and load keep the encoder, the stopped booster and the calibrator."""
  spec, _, folders = raw_splits
  train = gbdt.read_split(folders['train'], spec)
  valid = gbdt.read_split(folders['eval'], spec)
  model, report = gbdt.fit(spec, train, valid, gbdt.GbdtConfig(trials=2, tune_rows=1000),
                           'isotonic')
  assert report['tune_rows'] == 1000 and report['train_rows'] == len(train[1])
  model.save(str(tmp_path / 'm'))
  loaded = gbdt.GbdtModel.load(str(tmp_path / 'm'))
  x, _ = gbdt.read_split(folders['test'], spec)
  np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-12)
  assert loaded.calibrator.name == 'isotonic'
  with pytest.raises(ValueError, match='holds no GBDT baseline'):
    gbdt.GbdtModel.load(str(tmp_path))


def test_fit_rejects_one_class_training_rows(raw_splits):
  spec, _, folders = raw_splits
  x, y = gbdt.read_split(folders['train'], spec)
  with pytest.raises(ValueError, match='one class'):
    gbdt.fit(spec, (x, np.zeros_like(y)), (x, y), gbdt.GbdtConfig(trials=1))


def test_evaluator_scores_both_models_on_the_same_rows(raw_splits, trained, small_dnn,
                                                       tmp_path):
  """The candidate through its serving signature, the baseline on the raw columns, the
  label from the raw column; TFMA's metrics of both and their difference."""
  from components import gbdt_evaluator
  from pipeline import evaluation
  spec, tables, folders = raw_splits
  args, _ = trained
  model_dir, _ = small_dnn
  columns = gbdt_evaluator.score(model_dir, args.serving_model_dir, folders['test'], spec)
  test = tables['test']
  y = columns[evaluation.GBDT_LABEL_COLUMN]
  np.testing.assert_array_equal(y, test.column('clicked').to_numpy())
  served = tf.saved_model.load(model_dir).signatures['serving_default'](
      examples=tf.constant(local.serialize_examples(test, spec)))['probability']
  np.testing.assert_allclose(columns['probability_candidate'], served.numpy().ravel(),
                             rtol=1e-5)
  x, _ = gbdt.read_split(folders['test'], spec)
  np.testing.assert_allclose(columns['probability_gbdt'],
                             gbdt.GbdtModel.load(args.serving_model_dir).predict(x))
  gates = evaluation.Gates(gbdt_auc_margin=-1.0, gbdt_max_logloss_rise=1.0)
  report = gbdt_evaluator.evaluate(columns, str(tmp_path / 'eval'), gates)
  assert report['blessed'] is True and report['rows'] == test.num_rows
  for name in ('candidate', 'gbdt'):
    p = columns[evaluation.GBDT_PREDICTION_COLUMNS[name]]
    assert report[name]['auc'] == pytest.approx(roc_auc_score(y, p), abs=2e-3)
    assert report[name]['logloss'] == pytest.approx(log_loss(y, p), rel=1e-3)
  assert report['candidate']['auc_diff'] == pytest.approx(
      report['candidate']['auc'] - report['gbdt']['auc'], abs=1e-9)


class _Blessing:
  """A ModelBlessing artifact as the Evaluator leaves it."""

  def __init__(self, uri, blessed, model_id=7):
    from tfx.types import standard_artifacts
    self.artifact = standard_artifacts.ModelBlessing()
    self.artifact.uri = str(uri)
    self.artifact.set_int_custom_property('blessed', int(blessed))
    self.artifact.set_int_custom_property('current_model_id', model_id)
    self.artifact.set_string_custom_property('current_model', '/models/7')


def test_a_blessing_without_a_verdict_is_neither():
  from tfx.types import standard_artifacts
  from components import blessing_gate
  empty = standard_artifacts.ModelBlessing()
  assert blessing_gate.is_blessed(empty) is None
  assert blessing_gate.is_blessed(empty.mlmd_artifact) is None


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
  # The run's report reads the same verdict from ML Metadata's copy of the artifact.
  assert blessing_gate.is_blessed(out.mlmd_artifact) is ok
  assert os.path.isfile(out.uri + ('/BLESSED' if ok else '/NOT_BLESSED'))
  # What the Pusher and the latest-blessed-model resolver read.
  assert out.get_int_custom_property('current_model_id') == 7
  assert out.get_string_custom_property('current_model') == '/models/7'
  assert out.get_int_custom_property('gbdt_blessed') == gbdt_ok
  detail = json.load(open(os.path.join(out.uri, blessing_gate.REPORT_FILE)))
  assert detail['inputs'] == {'evaluator': bool(evaluator), 'gbdt': bool(gbdt_ok)}
