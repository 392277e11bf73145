"""Temperature scaling: fitting recovers a known temperature; the layer applies it."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from trainer.layers import calibration


def _synthetic(t0, b0, n=200_000, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.normal(-3.0, 2.0, n)            # overconfident logits of a CTR-like model
  p = 1 / (1 + np.exp(-(z / t0 + b0)))    # the truth is a tempered version
  return z, (rng.random(n) < p).astype(np.float64)


def test_recovers_known_temperature():
  z, y = _synthetic(t0=2.5, b0=0.0)
  t, b = calibration.fit_temperature(z, y)
  assert t == pytest.approx(2.5, rel=0.03) and b == 0.0
  assert calibration.binary_nll(z / t, y) < calibration.binary_nll(z, y)


def test_recovers_temperature_and_bias():
  z, y = _synthetic(t0=0.6, b0=-0.7, seed=1)
  t, b = calibration.fit_temperature(z, y, fit_bias=True)
  assert t == pytest.approx(0.6, rel=0.03)
  assert b == pytest.approx(-0.7, abs=0.05)


def test_layer_applies_and_saves(tmp_path):
  inputs = keras.Input((1,))
  layer = calibration.TemperatureScaling(name='temperature')
  model = keras.Model(inputs, tf.sigmoid(layer(inputs)))
  layer.set_calibration(2.0, 0.5)
  out = model(np.array([[4.0]], np.float32)).numpy()
  assert out[0, 0] == pytest.approx(1 / (1 + np.exp(-(4.0 / 2.0 + 0.5))), rel=1e-6)
  assert not layer.trainable_weights  # fitted after training, never by the optimiser
  model.save(str(tmp_path / 'm'), save_format='tf')
  loaded = tf.saved_model.load(str(tmp_path / 'm'))
  np.testing.assert_allclose(loaded(tf.constant([[4.0]])).numpy(), out, rtol=1e-6)
  with pytest.raises(ValueError, match='positive'):
    layer.set_calibration(0.0)


def test_bad_inputs():
  with pytest.raises(ValueError, match='equally many'):
    calibration.fit_temperature([1.0, 2.0], [1.0])
  with pytest.raises(ValueError, match='0 or 1'):
    calibration.fit_temperature([1.0, 2.0], [1.0, 0.5])


def _ece(p, y, bins=10):
  idx = np.minimum((p * bins).astype(int), bins - 1)
  return sum(abs(y[idx == b].sum() - p[idx == b].sum()) for b in range(bins)) / len(p)


@pytest.mark.parametrize('name', ['temperature', 'platt', 'isotonic'])
def test_calibrators_share_one_interface(name):
  z, y = _synthetic(t0=2.0, b0=0.3, n=100_000, seed=2)
  zv, yv = _synthetic(t0=2.0, b0=0.3, n=50_000, seed=3)
  cal = calibration.make_calibrator(name).fit(z, y)
  p = cal.predict(zv)
  raw = 1 / (1 + np.exp(-zv))
  assert _ece(p, yv) < _ece(raw, yv) / 3  # ECE before vs after, on fresh data
  layer = cal.layer()
  out = layer(tf.constant(zv[:512, None], tf.float32)).numpy().ravel()
  np.testing.assert_allclose(out, p[:512], rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match='unknown calibration'):
    calibration.make_calibrator('beta')


def test_isotonic_layer_is_monotone_and_saves(tmp_path):
  z, y = _synthetic(t0=1.5, b0=0.0, n=20_000, seed=4)
  cal = calibration.IsotonicCalibrator(max_knots=16).fit(z, y)
  assert len(cal.knots_x) <= 16
  grid = np.linspace(-10, 5, 200)
  out = cal.layer()(tf.constant(grid[:, None], tf.float32)).numpy().ravel()
  assert np.all(np.diff(out) >= -1e-7)
  inputs = keras.Input((1,))
  model = keras.Model(inputs, cal.layer()(inputs))
  model.save(str(tmp_path / 'iso'), save_format='tf')
  loaded = tf.saved_model.load(str(tmp_path / 'iso'))
  np.testing.assert_allclose(loaded(tf.constant(grid[:, None], tf.float32)).numpy().ravel(),
                             out, rtol=1e-6)


@pytest.mark.parametrize('method', ['platt', 'temperature', 'isotonic', 'none'])
def test_a_fitted_calibrator_round_trips_through_its_dict(method):
  """What the GBDT baseline saves beside its booster (trainer/gbdt.py)."""
  import json
  rng = np.random.default_rng(1)
  z = rng.normal(-2, 1.5, 3000)
  y = (rng.random(3000) < 1 / (1 + np.exp(-(0.6 * z - 0.5)))).astype(float)
  fitted = calibration.make_calibrator(method).fit(z, y)
  back = calibration.calibrator_from_dict(json.loads(json.dumps(fitted.to_dict())))
  assert back.name == fitted.name
  np.testing.assert_allclose(back.predict(z), fitted.predict(z), rtol=1e-12)
  if method == 'platt':   # a real fit, not the identity
    assert abs(fitted.temperature - 1) > 0.1 and abs(fitted.bias) > 0.1
  with pytest.raises(ValueError, match='unknown field'):
    calibration.calibrator_from_dict({'method': method, 'nonsense': 1})


def test_logit_is_finite_at_0_and_1_and_inverts_the_sigmoid():
  p = np.array([0.0, 1e-9, 0.2, 0.5, 0.97, 1.0], np.float32)
  z = calibration.logit(p)
  assert z.dtype == np.float64 and np.all(np.isfinite(z))
  np.testing.assert_allclose(z[[0, -1]], [np.log(1e-7 / (1 - 1e-7)), np.log((1 - 1e-7) / 1e-7)])
  np.testing.assert_allclose(1 / (1 + np.exp(-z[2:5])), p[2:5].astype(np.float64), rtol=1e-6)
