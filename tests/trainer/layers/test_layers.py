"""Every layer of trainer/layers: its config round-trips (``from_config(get_config())``),
and a model holding it saves in Keras' format and loads back, by the layer's registration
alone, with the same weights and the same outputs (the tests TFRS has for its layers)."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer import inputs as inputs_lib
from trainer.layers import SERIALIZABLE_PACKAGE, calibration, embedding, feature_selection
from trainer.layers import interaction, multitask, retention, sequence, transformer, wide
from transform import feature_spec as fs

SPEC = fs.from_dict({
    'labels': ['clicked'],
    'categorical': ['g', 'cat', {'name': 'u', 'hash_buckets': 50}],
    'numeric': ['x'],
    'sequence': [{'name': 's', 'max_len': 4, 'target': 'cat'}],
})
CARDS = {'g': 3, 'cat': 10, 'u': 50, 's': 11}
N, FIELDS, D = 6, 5, 8


def _features(rng):
  return {'g_xf': rng.integers(0, 3, N), 'cat_xf': rng.integers(0, 10, N),
          'u_xf': rng.integers(0, 50, N), 'x_xf': rng.normal(size=N).astype(np.float32),
          's_xf': rng.integers(0, 11, (N, 4))}


def _dense(*shape):
  return lambda rng: rng.normal(size=(N,) + shape).astype(np.float32)


# name -> (layer factory, [(Keras input, data maker)] in call order, call keywords)
CASES = {
    'TemperatureScaling': (lambda: calibration.TemperatureScaling(), [(1,)], {}),
    'IsotonicCalibration': (lambda: calibration.IsotonicCalibration(
        [0.0, 0.3, 0.7, 1.0], [0.01, 0.2, 0.6, 0.95]), [(1,)], {}),
    'MaskedMeanPooling': (lambda: embedding.MaskedMeanPooling(), [(4, D), 'mask'], {}),
    'FieldEmbedding': (lambda: embedding.FieldEmbedding(
        SPEC.to_dict(), CARDS, D, 1e-4, adaptive=True), ['features'], {}),
    'FeatureSelection': (lambda: feature_selection.FeatureSelection((16,), 0.1),
                         [(FIELDS * D,)], {}),
    'InteractionAggregation': (lambda: feature_selection.InteractionAggregation(2),
                               [(FIELDS * D,), (FIELDS * D,)], {'as_list': True}),
    'FactorizationMachine': (lambda: interaction.FactorizationMachine(), [(FIELDS, D)], {}),
    'SelfAttentionInteraction': (lambda: interaction.SelfAttentionInteraction(2, 4, 0.1),
                                 [(FIELDS, D)], {}),
    'SharedBottom': (lambda: multitask.SharedBottom(2), [(D,)], {}),
    'MixtureOfExperts': (lambda: multitask.MixtureOfExperts(2, 3, (8,)), [(D,)], {}),
    'ProgressiveLayeredExtraction': (lambda: multitask.ProgressiveLayeredExtraction(
        2, 2, 1, (8,), levels=2), [(D,)], {}),
    'MultiScaleRetention': (lambda: retention.MultiScaleRetention(2, dropout=0.1),
                            [(FIELDS, D)], {}),
    'TargetAttention': (lambda: sequence.TargetAttention(2), [(4, D), 'mask', (D,)], {}),
    'TransformerBlock': (lambda: transformer.TransformerBlock(2, 2, 0.1), [(FIELDS, D)], {}),
    'FieldTransformer': (lambda: transformer.FieldTransformer(2, 2, 2, 0.1),
                         [(FIELDS, D)], {}),
    'WideCrossLogit': (lambda: wide.WideCrossLogit(SPEC.to_dict(), CARDS, 100, 1e-4),
                       ['features'], {}),
}


def _model_and_data(name):
  make, specs, options = CASES[name]
  rng = np.random.default_rng(0)
  ins, data = [], []
  for spec in specs:
    if spec == 'features':
      ins.append(inputs_lib.build_inputs(SPEC))
      data.append(_features(rng))
    elif spec == 'mask':
      ins.append(keras.Input((4,), dtype=tf.bool))
      data.append(rng.random((N, 4)) < 0.7)
    else:
      ins.append(keras.Input(spec))
      data.append(_dense(*spec)(rng))
  layer = make()
  out = layer(ins) if options.get('as_list') else layer(*ins)
  return layer, keras.Model(ins, out), data


def test_every_layer_of_the_package_is_covered():
  classes = {name for module in (calibration, embedding, feature_selection, interaction,
                                 multitask, retention, sequence, transformer, wide)
             for name, obj in vars(module).items()
             if isinstance(obj, type) and issubclass(obj, keras.layers.Layer)
             and obj.__module__ == module.__name__}
  assert classes == set(CASES)


@pytest.mark.parametrize('name', sorted(CASES))
def test_config_round_trips(name):
  layer = CASES[name][0]()
  config = layer.get_config()
  clone = type(layer).from_config(config)
  assert clone.get_config() == config
  registered = keras.utils.get_registered_object(f'{SERIALIZABLE_PACKAGE}>{name}')
  assert registered is type(layer)


@pytest.mark.parametrize('name', sorted(CASES))
def test_saved_and_loaded_by_registration(name, tmp_path):
  tf.keras.utils.set_random_seed(0)
  layer, model, data = _model_and_data(name)
  # Every weight moved off its initial value (several start at zero or one), so that
  # equal outputs after loading mean the weights were saved and restored.
  rng = np.random.default_rng(1)
  model.set_weights([w + rng.normal(0, 0.1, w.shape).astype(w.dtype)
                     if np.issubdtype(w.dtype, np.floating) else w
                     for w in model.get_weights()])
  before = tf.nest.map_structure(lambda t: t.numpy(), model(data, training=False))
  path = str(tmp_path / f'{name}.keras')
  model.save(path)
  loaded = keras.models.load_model(path)          # no custom_objects: the registration
  assert any(isinstance(l, type(layer)) for l in loaded.layers)
  after = tf.nest.map_structure(lambda t: t.numpy(), loaded(data, training=False))
  before, after = tf.nest.flatten(before), tf.nest.flatten(after)  # a tuple comes back a list
  assert len(before) == len(after)
  for a, b in zip(before, after):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
