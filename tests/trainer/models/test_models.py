"""The model zoo's layers, heads, losses and optimisation settings, on small inputs."""
import itertools

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer import losses, models, optimization
from trainer.layers import multitask
from trainer.layers.embedding import FieldEmbedding
from trainer.layers.interaction import FactorizationMachine, SelfAttentionInteraction
from trainer.layers.sequence import TargetAttention
from trainer.layers.transformer import FieldTransformer
from trainer.models import autoint, blocks, dcn_v2, deepfm, dnn, heads, mtt, resort
from transform import feature_spec as fs
from helpers import TINY_CARDS, TINY_SPEC, tiny_data

PARAMETER_COUNTS = {
    'dnn': (dnn.DnnConfig(hidden_units=(32, 16)), dnn.parameter_count),
    'dnn_periodic': (dnn.DnnConfig(hidden_units=(32, 16), numeric_encoding='periodic',
                                   numeric_frequencies=4), dnn.parameter_count),
    'dcn_v2': (dcn_v2.DcnV2Config(projection_dim=4, hidden_units=(16,)),
               dcn_v2.parameter_count),
    'deepfm': (deepfm.DeepFmConfig(hidden_units=(16,)), deepfm.parameter_count),
    'autoint': (autoint.AutoIntConfig(head_dim=8, hidden_units=(16,)),
                autoint.parameter_count),
    'resort': (resort.ReSortConfig(), resort.parameter_count),
    'resort_mlp': (resort.ReSortConfig(mlp_units=(32, 16), bilinear=False),
                   resort.parameter_count),
    'mtt': (mtt.MttConfig(embedding_dim=16, hidden_units=(32,)), mtt.parameter_count),
    'mtt_skip': (mtt.MttConfig(embedding_dim=16, hidden_units=(32,), final_norm=False,
                               embedding_skip=True), mtt.parameter_count),
}
VARIANTS = {'dnn_periodic', 'resort_mlp', 'mtt_skip'}


@pytest.mark.parametrize('name', sorted(PARAMETER_COUNTS))
def test_parameter_count_matches_configuration(name):
  config, count = PARAMETER_COUNTS[name]
  model = models.build(name.split('_')[0] if name in VARIANTS else name, TINY_SPEC, TINY_CARDS, config,
                       heads.HeadConfig(tasks='primary'))
  assert model.core.count_params() == count(TINY_SPEC, TINY_CARDS, config)


def test_parameter_counts_cover_every_model():
  assert set(PARAMETER_COUNTS) - VARIANTS == set(models.MODELS)


def test_unknown_settings_are_named():
  with pytest.raises(ValueError, match="unknown setting.*'depth'"):
    models.model_config('dnn', {'depth': 3})
  with pytest.raises(ValueError, match='unknown model'):
    models.model_config('xgboost')
  with pytest.raises(ValueError, match='unknown task layout'):
    heads.HeadConfig(tasks='some')


def test_l2_penalties_scale_with_the_training_rows():
  config = dnn.DnnConfig(embedding_l2=1e-4, wide_l2=2e-4, l2_reference_rows=100_000)
  scaled, scale = blocks.scaled_to_rows(config, 800_000)
  assert scale == pytest.approx(0.125)
  assert scaled.embedding_l2 == pytest.approx(1.25e-5) and scaled.wide_l2 == pytest.approx(2.5e-5)
  assert scaled.hidden_units == config.hidden_units and config.embedding_l2 == 1e-4
  same, scale = blocks.scaled_to_rows(dnn.DnnConfig(), 800_000)    # the default: as given
  assert scale == 1.0 and same.embedding_l2 == 1e-4
  with pytest.raises(ValueError, match='training rows'):
    blocks.scaled_to_rows(config, 0)


def test_task_layouts():
  assert [t.key for t in heads.task_layout(TINY_SPEC, 'auto')[1]] == ['ctr', 'cvr', 'ctcvr']
  assert [t.key for t in heads.task_layout(TINY_SPEC, 'all')[1]] == ['clicked', 'converted']
  assert [t.key for t in heads.task_layout(TINY_SPEC, 'primary')[1]] == ['clicked']
  one = fs.from_dict({'labels': ['y'], 'categorical': ['a']})
  assert [t.key for t in heads.task_layout(one, 'auto')[1]] == ['y']
  with pytest.raises(ValueError, match='exactly two labels'):
    heads.task_layout(one, 'esmm')


def test_esmm_ctcvr_logit_is_exact_and_stable():
  a = tf.constant([-30.0, -3.0, 0.0, 2.0, 40.0])
  b = tf.constant([-2.0, 1.0, 0.0, -40.0, 40.0])
  z = multitask.esmm_ctcvr_logit(a, b).numpy()
  assert np.all(np.isfinite(z))
  p = tf.sigmoid(a).numpy().astype(np.float64) * tf.sigmoid(b).numpy()
  np.testing.assert_allclose(1 / (1 + np.exp(-z.astype(np.float64))), p, rtol=1e-5)


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


def test_moe_gates_are_distributions():
  x = tf.random.normal([8, 12])
  moe = multitask.MixtureOfExperts(2, num_experts=3, expert_units=(5,))
  outs = moe(x)
  assert len(outs) == 2 and outs[0].shape == (8, 5)
  for w in moe.gate_weights(x):
    assert w.shape == (8, 3)
    np.testing.assert_allclose(tf.reduce_sum(w, 1).numpy(), 1.0, rtol=1e-5)
  ple = multitask.ProgressiveLayeredExtraction(3, 2, 1, (6,), levels=2)
  assert [o.shape for o in ple(x)] == [(8, 6)] * 3


def test_field_embedding_shares_the_target_table_and_masks_padding():
  layer = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8, adaptive=True,
                         sequence_encoder='attention')
  feats, _ = tiny_data(6)
  out = layer(feats)
  assert out.shape == (6, 5, 8)
  assert layer.tables['cat'].input_dim == 11      # the target's table has a padding row
  assert 's' not in layer.tables                  # the sequence reads the target's table
  assert layer.tables['u'].output_dim == 8        # spec width, projected to the common 8
  assert layer.tables['g'].output_dim == fs.default_embedding_dim(3)
  # Padding never changes the attention's answer.
  seq = np.array([[3, 5, 0, 0]])
  other_pad = feats.copy()
  a = layer({**{k: v[:1] for k, v in feats.items()}, 's_xf': seq})
  b = layer({**{k: v[:1] for k, v in other_pad.items()}, 's_xf': seq})
  np.testing.assert_allclose(a, b)


def test_match_count_field_counts_the_candidate_in_its_sequence():
  layer = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8, sequence_match=True)
  feats, _ = tiny_data(200)
  out = layer(feats).numpy()
  assert layer.field_names == ['g', 'cat', 'u', 'x', 's', 's_matches']
  assert out.shape == (200, 6, 8)
  # cat's vocabulary ids are 0-8; 9 is its OOV bucket, which stands for many values.
  cat, seq = feats['cat_xf'], feats['s_xf']
  want = np.where(cat < 9, (seq == cat[:, None] + 1).sum(1), 0)
  got = layer._matches(TINY_SPEC.field('s'), TINY_SPEC.field('cat'), feats).numpy()
  np.testing.assert_array_equal(got, want)
  assert (want >= 2).any() and (cat == 9).any() and ((seq == 10).sum(1)[cat == 9] > 0).any()
  table = layer.match_tables['s'].embeddings.numpy()
  np.testing.assert_allclose(out[:, 5], table[want], rtol=1e-6)
  clone = FieldEmbedding.from_config(layer.get_config())
  clone(feats)
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(clone(feats).numpy(), out, rtol=1e-6)
  assert FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8)(feats).shape == (200, 5, 8)


def test_periodic_numeric_embedding_moves_non_monotonically_and_round_trips():
  layer = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8, numeric_encoding='periodic',
                         numeric_frequencies=6, numeric_sigma=1.0)
  feats, _ = tiny_data(64)
  grid = np.linspace(-3, 3, 64).astype(np.float32)
  vec = layer({**feats, 'x_xf': grid}).numpy()[:, 3]          # the numeric field
  linear = FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, dim=8)
  lin = linear({**feats, 'x_xf': grid}).numpy()[:, 3]
  steps = np.sign(np.diff(vec, axis=0))
  # A linear field's coordinates are monotone in x; periodic ones turn (measured: 8 of 8
  # coordinates change direction at sigma 1).
  assert all(len(set(np.sign(np.diff(lin[:, j]))) - {0}) == 1 for j in range(8))
  assert sum(len(set(steps[:, j]) - {0}) > 1 for j in range(8)) >= 4
  clone = FieldEmbedding.from_config(layer.get_config())
  clone({**feats, 'x_xf': grid})
  clone.set_weights(layer.get_weights())
  np.testing.assert_allclose(clone({**feats, 'x_xf': grid}).numpy()[:, 3], vec, rtol=1e-6)
  with pytest.raises(ValueError, match='numeric_encoding'):
    FieldEmbedding(TINY_SPEC.to_dict(), TINY_CARDS, numeric_encoding='buckets')


@pytest.mark.parametrize('embedding_optimizer,rows_move', [('same', True),
                                                           ('adagrad', False)])
def test_embedding_rows_move_only_when_looked_up_under_adagrad(embedding_optimizer,
                                                               rows_move):
  """Adam's moments decay for every row, so a row keeps moving on its momentum after
  the batch that looked it up; Adagrad (embedding_optimizer) leaves it where it was."""
  opt = optimization.OptimizerConfig(embedding_optimizer=embedding_optimizer)
  # No L2: its gradient would move every row (the shrinkage it is there for).
  model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(hidden_units=(8,), embedding_l2=0.0),
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
    model = models.build('dnn', TINY_SPEC, TINY_CARDS, dnn.DnnConfig(hidden_units=(8,), embedding_l2=0.0,
                                                         wide_l2=0.0),
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


def test_target_attention_ignores_masked_positions():
  att = TargetAttention(num_heads=2)
  seq = tf.random.normal([2, 5, 8])
  mask = tf.constant([[True, True, False, False, False]] * 2)
  target = tf.random.normal([2, 8])
  out = att(seq, mask, target)
  noisy = tf.concat([seq[:, :2], 100 * tf.random.normal([2, 3, 8])], axis=1)
  np.testing.assert_allclose(out, att(noisy, mask, target), atol=1e-5)
  assert out.shape == (2, 8)


def test_factorization_machine_is_the_sum_of_pairwise_products():
  e = tf.random.normal([3, 4, 5])
  brute = sum(tf.reduce_sum(e[:, i] * e[:, j], axis=1)
              for i, j in itertools.combinations(range(4), 2))
  np.testing.assert_allclose(FactorizationMachine()(e)[:, 0], brute, rtol=1e-4, atol=1e-5)


def test_interaction_and_transformer_shapes():
  e = tf.random.normal([3, 4, 8])
  assert SelfAttentionInteraction(2, 6)(e).shape == (3, 4, 12)
  assert FieldTransformer(2, 4)(e).shape == (3, 4, 8)


def test_field_transformer_final_norm_option():
  e = 3.0 * tf.random.normal([3, 4, 8], seed=1)
  normed = FieldTransformer(0, 4)
  raw = FieldTransformer(0, 4, final_norm=False)
  # No blocks: the output is the input plus the field-identity embedding, normalised per
  # field (zero mean, unit variance over the width) only with the final norm.
  out = normed(e).numpy()
  np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
  np.testing.assert_allclose(out.std(-1), 1.0, rtol=1e-2)
  np.testing.assert_allclose(raw(e), e + raw.field_ids[None], rtol=1e-6)
  assert len(raw.weights) == len(normed.weights) - 2
  clone = FieldTransformer.from_config(raw.get_config())
  assert clone.get_config() == raw.get_config() and clone.final_norm is False


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


def test_trains_with_focal_loss_swa_and_early_stopping():
  feats, labels = tiny_data(3000, seed=2)
  val_feats, val_labels = tiny_data(1000, seed=3)
  keras.utils.set_random_seed(0)
  model = models.build('deepfm', TINY_SPEC, TINY_CARDS, deepfm.DeepFmConfig(hidden_units=(16,)),
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


def test_mixed_precision_forward_pass():
  optimization.set_mixed_precision(True)
  try:
    model = models.build('mtt', TINY_SPEC, TINY_CARDS, mtt.MttConfig(embedding_dim=16,
                                                           hidden_units=(16,)))
    feats, labels = tiny_data(256)
    model.fit(feats, labels, epochs=1, batch_size=128, verbose=0)
    out = model.predict(feats, verbose=0)
    assert all(v.dtype == np.float32 and np.all(np.isfinite(v)) for v in out.values())
    assert model.core.get_layer('shared_mlp_0').compute_dtype == 'float16'
  finally:
    optimization.set_mixed_precision(False)
