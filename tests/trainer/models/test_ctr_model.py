"""trainer/models/ctr_model.py, the Keras model that trains a core on its tasks: the AUC
of logits, the loss with and without uncertainty weighting and the L2 penalties, and the
metric names early stopping watches."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from sklearn.metrics import roc_auc_score

from trainer import losses, models
from trainer.models import ctr_model, dnn, heads
from helpers import TINY_CARDS, TINY_SPEC, tiny_data


def test_score_auc_is_the_auc_of_the_logits():
  rng = np.random.default_rng(0)
  y = (rng.random(5000) < 0.02).astype(np.float32)
  z = rng.normal(-4.0, 1.0, 5000) + 1.5 * y                  # CTR-scale logits
  m = ctr_model.ScoreAUC(num_thresholds=1000)
  m.update_state(y[:, None], z[:, None].astype(np.float32))
  assert float(m.result()) == pytest.approx(roc_auc_score(y, z), abs=2e-3)


@pytest.mark.parametrize('uncertainty', [False, True])
def test_the_loss_is_the_tasks_losses_weighted_plus_the_penalties(uncertainty):
  config = dnn.DnnConfig(hidden_units=(8,), embedding_l2=1e-3)
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, config,
                       heads.HeadConfig(tasks='all', uncertainty_weighting=uncertainty))
  feats, labels = tiny_data(64)
  logits = model(feats)
  task_losses = model._task_losses(labels, logits)
  assert len(task_losses) == 2
  for t, got in zip(model.trained, task_losses):
    y = labels[t.label].astype(np.float32)[:, None]
    want = keras.losses.binary_crossentropy(y, logits[t.key], from_logits=True)
    assert float(got) == pytest.approx(float(tf.reduce_mean(want)), rel=1e-5)
  penalty = float(tf.add_n(model.losses))
  assert penalty > 0
  if uncertainty:
    model.log_vars.assign([0.5, -1.0])
    want = (np.exp(-0.5) * float(task_losses[0]) + 0.5
            + np.exp(1.0) * float(task_losses[1]) - 1.0)
  else:
    want = float(task_losses[0]) + float(task_losses[1])
  assert float(model._total(task_losses)) == pytest.approx(want + penalty, rel=1e-5)


def test_metrics_are_named_for_early_stopping_and_training_lowers_the_loss():
  keras.utils.set_random_seed(0)
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(hidden_units=(16,)),
                       heads.HeadConfig(tasks='all'), losses.LossConfig())
  feats, labels = tiny_data(2000)
  history = model.fit(feats, labels, epochs=3, batch_size=128, verbose=0).history
  assert set(history) == {'loss', 'auc', 'logloss', 'converted_auc', 'converted_logloss'}
  assert history['loss'][-1] < history['loss'][0]
  # Measured: AUC 0.547, 0.753, 0.818 over the three passes; logloss 0.660 to 0.576.
  assert history['auc'][-1] > 0.78 and history['logloss'][-1] < history['logloss'][0] - 0.05
