"""RE-SORT: shapes, parameter count against the configuration, learns generated data."""
import numpy as np
from sklearn.metrics import roc_auc_score
import tf_keras as keras

from datagen import synthetic
from trainer import optimization
from trainer.layers import calibration
from trainer.layers.embedding import FieldEmbedding
from trainer import models
from trainer.models import resort
from transform import feature_spec as fs

# The seed's five-field schema.
SEED_SPEC = fs.from_dict({
    'labels': ['clicked'],
    'categorical': ['gender', 'age_group', 'inventory_id', 'day_of_week', 'hour'],
})
SEED_CARDS = {'gender': 3, 'age_group': 9, 'inventory_id': 19, 'day_of_week': 8, 'hour': 25}


def test_seed_schema_parameter_count():
  model = models.build('resort', SEED_SPEC, SEED_CARDS)
  expected = resort.parameter_count(SEED_SPEC, SEED_CARDS, resort.ReSortConfig())
  assert model.core.count_params() == expected
  # Reported in the issue: the seed counts about 34K parameters on this schema.
  assert 40_000 < expected < 60_000


def test_field_embedding_shapes():
  spec = fs.from_dict({'labels': ['y'], 'categorical': ['a'], 'numeric': ['x'],
                       'sequence': [{'name': 's', 'max_len': 3}]})
  layer = FieldEmbedding(spec.to_dict(), {'a': 4, 's': 6}, dim=8)
  out = layer({'a_xf': np.array([0, 3]), 'x_xf': np.array([0.5, -1.0], np.float32),
               's_xf': np.array([[1, 2, 0], [0, 0, 0]])})
  assert out.shape == (2, 3, 8)
  np.testing.assert_allclose(out[1, 2], 0.0)  # an empty sequence embeds to zeros
  assert layer.field_names == ['a', 'x', 's']


def test_learns_generated_data():
  """On a few thousand generated rows, RE-SORT (temperature-scaled on validation) beats a
  constant predictor on test, in AUC and in logloss."""
  table = synthetic.generate(40_000, seed=11)
  cats = ('gender', 'age_group', 'inventory_id', 'day_of_week', 'hour')
  nums = ('history_0', 'l_feat_1', 'feat_2')
  feats = {f'{c}_xf': table.column(c).to_numpy() for c in cats}
  for c in nums:  # log1p + z-score, as Transform would
    x = np.log1p(table.column(c).to_numpy().astype(np.float32))
    feats[f'{c}_xf'] = (x - x.mean()) / x.std()
  y = table.column('clicked').to_numpy().astype(np.float32)
  spec = fs.from_dict({'labels': ['clicked'], 'categorical': list(cats),
                       'numeric': list(nums)})
  keras.utils.set_random_seed(0)
  # CTR models overfit within an epoch or two: regularise and early-stop on validation.
  model = models.build('resort', spec, SEED_CARDS,
                       resort.ReSortConfig(dropout=0.2, embedding_l2=1e-3),
                       optimizer=optimization.OptimizerConfig(learning_rate=3e-3))
  train, val, test = slice(0, 28_000), slice(28_000, 32_000), slice(32_000, None)
  part = lambda s: {k: v[s] for k, v in feats.items()}  # noqa: E731
  label = lambda s: {'clicked_xf': y[s]}  # noqa: E731
  model.fit(part(train), label(train), epochs=4, batch_size=512, verbose=0,
            validation_data=(part(val), label(val)),
            callbacks=[keras.callbacks.EarlyStopping('val_auc', mode='max', patience=1,
                                                     restore_best_weights=True)])
  logit = lambda s: model.predict(part(s), verbose=0)['clicked'].ravel()  # noqa: E731
  # The temperature-scaled head: fitted on validation, applied to test.
  t, b = calibration.fit_temperature(logit(val), y[val], fit_bias=True)
  p = 1 / (1 + np.exp(-(logit(test) / t + b)))
  base = y[train].mean()
  logloss = -np.mean(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p))
  const = -np.mean(y[test] * np.log(base) + (1 - y[test]) * np.log(1 - base))
  assert roc_auc_score(y[test], p) > 0.58
  assert logloss < const
