"""trainer/losses.py: BCE, focal loss, label smoothing and class-balanced weights; training
under focal loss with SWA and early stopping."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer import losses, models, optimization
from trainer.models import deepfm, heads
from helpers import TINY_CARDS, TINY_SPEC, tiny_data


def test_losses():
  y = tf.constant([0.0, 1.0, 1.0, 0.0])
  z = tf.constant([-2.0, 0.5, 3.0, 1.0])
  bce = losses.per_example_loss(y, z, losses.LossConfig())
  np.testing.assert_allclose(bce, np.logaddexp(0, z) - y * z, rtol=1e-6)
  focal0 = losses.per_example_loss(y, z, losses.LossConfig('focal', focal_gamma=0.0))
  np.testing.assert_allclose(focal0, bce, rtol=1e-6)
  focal = losses.per_example_loss(y, z, losses.LossConfig('focal', focal_gamma=2.0))
  assert np.all(focal.numpy() < bce.numpy())        # easy examples are down-weighted
  smooth = losses.per_example_loss(y, z, losses.LossConfig(label_smoothing=0.2))
  target = y * 0.8 + 0.1
  np.testing.assert_allclose(smooth, np.logaddexp(0, z) - target * z, rtol=1e-6)
  w_neg, w_pos = losses.class_balanced_weights(980, 20, beta=0.999)
  assert w_pos > w_neg
  assert (980 * w_neg + 20 * w_pos) / 1000 == pytest.approx(1.0)
  with pytest.raises(ValueError, match='unknown loss'):
    losses.LossConfig('hinge')


def test_trains_with_focal_loss_swa_and_early_stopping():
  feats, labels = tiny_data(3000, seed=2)
  val_feats, val_labels = tiny_data(1000, seed=3)
  keras.utils.set_random_seed(0)
  model = models.build('deepfm', TINY_SPEC, TINY_CARDS,
                       deepfm.DeepFmConfig(hidden_units=(16,)),
                       heads.HeadConfig(tasks='primary'),
                       losses.LossConfig('focal', focal_gamma=1.0),
                       optimization.OptimizerConfig('adamw', learning_rate=3e-3))
  swa = optimization.StochasticWeightAveraging(0, (val_feats, val_labels))
  stop = keras.callbacks.EarlyStopping('val_auc', mode='max', patience=3,
                                       restore_best_weights=True)
  history = model.fit(feats, labels, epochs=4, batch_size=128, verbose=0,
                      validation_data=(val_feats, val_labels), callbacks=[stop, swa])
  assert max(history.history['val_auc']) > 0.75
  assert swa.count >= 2
  final = model.evaluate(val_feats, val_labels, verbose=0, return_dict=True)['auc']
  assert final >= max(history.history['val_auc']) - 0.01
