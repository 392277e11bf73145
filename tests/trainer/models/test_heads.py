"""trainer/models/heads.py: the task layouts and the multi-task heads on every backbone."""
import numpy as np
import pytest
import tf_keras as keras

from trainer import models, optimization
from trainer.layers import multitask
from trainer.models import dnn, heads
from transform import feature_spec as fs
from helpers import TINY_CARDS, TINY_SPEC, tiny_data


def test_task_layouts():
  assert [t.key for t in heads.task_layout(TINY_SPEC, 'auto')[1]] == ['ctr', 'cvr', 'ctcvr']
  assert [t.key for t in heads.task_layout(TINY_SPEC, 'all')[1]] == ['clicked', 'converted']
  assert [t.key for t in heads.task_layout(TINY_SPEC, 'primary')[1]] == ['clicked']
  one = fs.from_dict({'labels': ['y'], 'categorical': ['a']})
  assert [t.key for t in heads.task_layout(one, 'auto')[1]] == ['y']
  with pytest.raises(ValueError, match='exactly two labels'):
    heads.task_layout(one, 'esmm')


@pytest.mark.parametrize('backbone', multitask.BACKBONES)
def test_multitask_backbones_learn_both_tasks(backbone):
  feats, labels = tiny_data(4000)
  keras.utils.set_random_seed(1)
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(hidden_units=(32,)),
                       heads.HeadConfig(backbone=backbone, expert_units=(16,),
                                       uncertainty_weighting=backbone == 'mmoe'),
                       optimizer=optimization.OptimizerConfig(learning_rate=3e-3))
  history = model.fit(feats, labels, epochs=4, batch_size=128, verbose=0).history
  assert history['auc'][-1] > 0.75 and history['ctcvr_auc'][-1] > 0.7
  out = model.predict(feats, verbose=0)
  assert set(out) == {'ctr', 'cvr', 'ctcvr'}
  p = lambda k: 1 / (1 + np.exp(-out[k].astype(np.float64)))  # noqa: E731
  np.testing.assert_allclose(p('ctcvr'), p('ctr') * p('cvr'), rtol=1e-4)
  if backbone == 'mmoe':
    assert model.log_vars is not None and model.log_vars.shape == (2,)
