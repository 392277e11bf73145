"""trainer/gbdt.py, the GBDT baseline: LightGBM on the raw splits, searched on eval,
calibrated, saved and loaded."""
import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from trainer import gbdt


def test_config_rejects_bad_settings():
  with pytest.raises(ValueError, match='unknown setting'):
    gbdt.config_from_dict({'num_trees': 10})
  with pytest.raises(ValueError, match='trials=0'):
    gbdt.config_from_dict({'trials': 0})
  with pytest.raises(ValueError, match='tune_rows=10'):
    gbdt.config_from_dict({'tune_rows': 10})


def test_run_fn_searches_calibrates_and_saves(raw_splits, gbdt_run):
  spec, tables, folders = raw_splits
  report = gbdt_run['report']
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

  model = gbdt.GbdtModel.load(gbdt_run['serving_model_dir'])
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


