"""trainer/optimization.py: optimisers per variable group (Adagrad tables, FTRL crosses),
schedules, SWA and mixed precision."""
import numpy as np
import pytest
import tf_keras as keras

from trainer import models, optimization
from trainer.models import dnn, heads, mtt
from helpers import TINY_CARDS, TINY_SPEC, tiny_data


@pytest.mark.parametrize('embedding_optimizer,rows_move', [('same', True),
                                                           ('adagrad', False)])
def test_embedding_rows_move_only_when_looked_up_under_adagrad(embedding_optimizer,
                                                               rows_move):
  """Adam's moments decay for every row, so a row keeps moving on its momentum after
  the batch that looked it up; Adagrad (embedding_optimizer) leaves it where it was."""
  opt = optimization.OptimizerConfig(embedding_optimizer=embedding_optimizer)
  # No L2: its gradient would move every row (the shrinkage it is there for).
  model = models.build('dnn', TINY_SPEC, TINY_CARDS,
                       dnn.DnnConfig(hidden_units=(8,), embedding_l2=0.0),
                       heads.HeadConfig(tasks='primary'), optimizer=opt)
  feats, labels = tiny_data(32)
  first = {**feats, 'u_xf': np.full(32, 7)}
  later = {**feats, 'u_xf': np.full(32, 9)}
  model.train_on_batch(first, {'clicked_xf': labels['clicked_xf']})
  table = model.core.get_layer('fields').tables['u'].embeddings
  row7, row9 = table.numpy()[7].copy(), table.numpy()[9].copy()
  model.train_on_batch(later, {'clicked_xf': labels['clicked_xf']})
  moved = np.abs(table.numpy()[7] - row7).max()
  assert (moved > 1e-5) == rows_move, moved
  assert np.abs(table.numpy()[9] - row9).max() > 1e-5         # the looked-up row did move
  with pytest.raises(ValueError, match='embedding_optimizer'):
    optimization.OptimizerConfig(embedding_optimizer='ftrl')


def test_crossed_columns_train_with_ftrl():
  """``cross_optimizer: ftrl``: FTRL-Proximal's first step on a cell is
  -g / (sqrt(n0 + g^2) / rate + 2 l2): about the rate without L2 (|g| >> sqrt(n0)), near
  zero under a strong L2. Every other table keeps its own optimiser (SGD here)."""
  feats, labels = tiny_data(64)
  runs = {}
  for l2 in (0.0, 1e3):
    opt = optimization.OptimizerConfig(embedding_optimizer='sgd', embedding_learning_rate=0.05,
                                       cross_optimizer='ftrl', cross_learning_rate=0.5,
                                       cross_ftrl_l2=l2)
    keras.utils.set_random_seed(4)
    model = models.build('dnn', TINY_SPEC, TINY_CARDS,
                         dnn.DnnConfig(hidden_units=(8,), embedding_l2=0.0, wide_l2=0.0),
                         heads.HeadConfig(tasks='primary'), optimizer=opt)
    crosses = {v.name for v in optimization.cross_tables(model)}
    tables = {v.name: v for v in model.trainable_variables
              if optimization.is_embedding_table(v)}
    before = {k: v.numpy().copy() for k, v in tables.items()}
    model.train_on_batch(feats, {'clicked_xf': labels['clicked_xf']})
    runs[l2] = {k: v.numpy() - before[k] for k, v in tables.items()}
  assert crosses and crosses < set(runs[0.0])
  assert any(k.startswith('wide') and k not in crosses for k in runs[0.0])
  for name in crosses:
    step = np.abs(runs[0.0][name])
    assert step.max() <= 0.5 + 1e-6 and step.max() > 0.4, (name, step.max())
    assert np.abs(runs[1e3][name]).max() < 1e-4, name
  for name in set(runs[0.0]) - crosses:
    assert np.abs(runs[0.0][name]).max() > 0, name
    np.testing.assert_allclose(runs[1e3][name], runs[0.0][name], rtol=1e-4, atol=1e-9)
  with pytest.raises(ValueError, match='cross_optimizer'):
    optimization.OptimizerConfig(cross_optimizer='adam')
  with pytest.raises(ValueError, match='cross_ftrl_l2'):
    optimization.OptimizerConfig(cross_ftrl_l2=-1.0)
  with pytest.raises(ValueError, match='embedding_optimizer'):
    optimization.OptimizerConfig(cross_optimizer='ftrl', embedding_optimizer='same')
  with pytest.raises(ValueError, match='wide_cross_l2'):
    models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(wide_cross_l2=1e-3),
                 optimizer=optimization.OptimizerConfig(cross_optimizer='ftrl'))


def test_optimizers_and_schedule():
  cfg = optimization.OptimizerConfig('adamw', schedule='cosine_restarts',
                                     first_decay_steps=10, clipnorm=1.0)
  opt = optimization.make_optimizer(cfg)
  assert isinstance(opt, keras.optimizers.AdamW) and opt.global_clipnorm == 1.0
  lr = optimization.learning_rate(cfg)
  assert float(lr(0)) == pytest.approx(1e-3)
  assert float(lr(9)) < 1e-4                        # end of the first cosine period
  assert float(lr(10)) == pytest.approx(1e-3)       # warm restart
  with pytest.raises(ValueError, match='unknown optimizer'):
    optimization.OptimizerConfig('sgd9')


def test_cosine_schedule_decays_over_the_trainers_budget():
  cfg = optimization.OptimizerConfig(schedule='cosine', alpha=0.1)
  with pytest.raises(ValueError, match='needs decay_steps'):
    optimization.learning_rate(cfg)
  lr = optimization.learning_rate(optimization.with_training_steps(cfg, 100))
  assert float(lr(0)) == pytest.approx(1e-3)
  assert float(lr(50)) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5), rel=1e-5)
  assert float(lr(100)) == pytest.approx(1e-4, rel=1e-5)       # alpha * rate, no restart
  assert float(lr(150)) == pytest.approx(1e-4, rel=1e-5)
  fixed = optimization.OptimizerConfig(schedule='cosine', decay_steps=7)
  assert optimization.with_training_steps(fixed, 100).decay_steps == 7
  constant = optimization.OptimizerConfig()
  assert optimization.with_training_steps(constant, 100) is constant


def test_mixed_precision_forward_pass():
  optimization.set_mixed_precision(True)
  try:
    model = models.build('mtt', TINY_SPEC, TINY_CARDS,
                         mtt.MttConfig(embedding_dim=16, hidden_units=(16,)))
    feats, labels = tiny_data(256)
    model.fit(feats, labels, epochs=1, batch_size=128, verbose=0)
    out = model.predict(feats, verbose=0)
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in out.values())
    assert model.core.get_layer('shared_mlp_0').compute_dtype == 'float16'
  finally:
    optimization.set_mixed_precision(False)
