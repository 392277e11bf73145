"""Temperature scaling of task logits, fitted after training on the validation split.

:class:`TemperatureScaling` maps a logit ``z`` to ``z / T + b``; ``T`` and ``b`` are
non-trainable weights, so they are saved inside the SavedModel and serving returns
calibrated probabilities. :func:`fit_temperature` finds them by minimising the binary
negative log-likelihood on held-out (logit, label) pairs (Guo et al., 2017), with the
bias optional (with the bias this is Platt scaling on the logit). Platt and isotonic
calibration sit behind the same :class:`Calibrator` interface (:func:`make_calibrator`).
"""

from __future__ import annotations



from typing import Any, Dict, Sequence, Tuple

import numpy as np
from scipy import optimize, special
import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE


def logit(p, eps: float = 1e-7) -> np.ndarray:
  """The logit of probabilities ``p`` (float64), clipped to [eps, 1 - eps] first so that
  a 0 or 1 stays finite: what the calibrators take from a model that outputs
  probabilities (LightGBM, a served model)."""
  return special.logit(np.clip(np.asarray(p, np.float64), eps, 1 - eps))


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class TemperatureScaling(keras.layers.Layer):
  """``logit / temperature + bias``, with both held as non-trainable weights."""

  def build(self, input_shape):
    self.temperature = self.add_weight('temperature', shape=(), initializer='ones',
                                       trainable=False)
    self.bias = self.add_weight('bias', shape=(), initializer='zeros', trainable=False)
    super().build(input_shape)

  def call(self, logits):
    return logits / self.temperature + self.bias

  def set_calibration(self, temperature: float, bias: float = 0.0) -> None:
    if not temperature > 0:
      raise ValueError(f'temperature must be positive, got {temperature}')
    self.temperature.assign(temperature)
    self.bias.assign(bias)


def _nll(params, z, y, fit_bias):
  log_t = params[0]
  b = params[1] if fit_bias else 0.0
  t = np.exp(log_t)
  s = z / t + b
  # log(1 + e^s) - y s, computed stably, and its gradient.
  nll = np.mean(np.logaddexp(0.0, s) - y * s)
  resid = 1.0 / (1.0 + np.exp(-s)) - y
  grad_log_t = np.mean(resid * (-z / t))
  grad = [grad_log_t] + ([np.mean(resid)] if fit_bias else [])
  return nll, np.array(grad)


def fit_temperature(logits, labels, fit_bias: bool = False) -> Tuple[float, float]:
  """The (temperature, bias) minimising the mean binary NLL of ``labels`` given ``logits``.

  Args:
    logits: uncalibrated logits, any shape (flattened).
    labels: 0/1 labels of the same size.
    fit_bias: also fit an additive bias (otherwise it is 0).
  """
  z = np.asarray(logits, np.float64).ravel()
  y = np.asarray(labels, np.float64).ravel()
  if z.shape != y.shape or z.size == 0:
    raise ValueError(f'need equally many logits and labels, got {z.size} and {y.size}')
  if not np.all((y == 0) | (y == 1)):
    raise ValueError('labels must be 0 or 1')
  x0 = np.zeros(2 if fit_bias else 1)
  res = optimize.minimize(_nll, x0, args=(z, y, fit_bias), jac=True, method='L-BFGS-B',
                          bounds=[(-7.0, 7.0)] + ([(-20.0, 20.0)] if fit_bias else []))
  return float(np.exp(res.x[0])), float(res.x[1]) if fit_bias else 0.0


def binary_nll(logits, labels) -> float:
  z = np.asarray(logits, np.float64).ravel()
  y = np.asarray(labels, np.float64).ravel()
  return float(np.mean(np.logaddexp(0.0, z) - y * z))



@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class IsotonicCalibration(keras.layers.Layer):
  """Maps logits to probabilities through a monotone piecewise-linear curve.

  The curve's knots (``x``: uncalibrated probabilities, ascending; ``y``: calibrated ones)
  are constants of the layer, so it saves inside the SavedModel.
  """

  def __init__(self, knots_x: Sequence[float], knots_y: Sequence[float], **kwargs):
    super().__init__(**kwargs)
    self.knots_x = [float(v) for v in knots_x]
    self.knots_y = [float(v) for v in knots_y]
    if len(self.knots_x) != len(self.knots_y) or len(self.knots_x) < 2:
      raise ValueError('need at least two (x, y) knots of equal count')

  def call(self, logits):
    x = tf.constant(self.knots_x, self.compute_dtype)
    y = tf.constant(self.knots_y, self.compute_dtype)
    p = tf.clip_by_value(tf.sigmoid(logits), x[0], x[-1])
    flat = tf.reshape(p, [-1])
    i = tf.clip_by_value(tf.searchsorted(x, flat, side='right') - 1, 0, len(self.knots_x) - 2)
    x0, x1 = tf.gather(x, i), tf.gather(x, i + 1)
    y0, y1 = tf.gather(y, i), tf.gather(y, i + 1)
    w = tf.where(x1 > x0, (flat - x0) / tf.maximum(x1 - x0, 1e-12), tf.zeros_like(flat))
    return tf.reshape(y0 + w * (y1 - y0), tf.shape(p))

  def get_config(self):
    config = super().get_config()
    config.update(knots_x=self.knots_x, knots_y=self.knots_y)
    return config


class Calibrator:
  """Post-hoc calibration of one task's logits, fitted on the validation split.

  ``fit(logits, labels)`` then ``predict(logits)`` (probabilities, NumPy) or ``layer()``
  (a tf_keras layer from logits to probabilities, to place at the end of the model).
  """
  name = ''

  def fit(self, logits, labels) -> 'Calibrator':
    raise NotImplementedError

  def predict(self, logits) -> np.ndarray:
    raise NotImplementedError

  def layer(self, name: str = '') -> keras.layers.Layer:
    """The fitted calibration as a layer; ``name`` prefixes its layer name."""
    raise NotImplementedError

  def to_dict(self) -> Dict[str, Any]:
    """The fitted state as JSON-able values; :func:`calibrator_from_dict` inverts it."""
    state = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
             for k, v in vars(self).items() if k != 'name'}
    return {'method': self.name, **state}


class TemperatureCalibrator(Calibrator):
  """Temperature scaling; with ``fit_bias`` it is Platt scaling of the logit."""

  def __init__(self, fit_bias: bool = False):
    self.fit_bias = fit_bias
    self.name = 'platt' if fit_bias else 'temperature'
    self.temperature, self.bias = 1.0, 0.0

  def fit(self, logits, labels):
    self.temperature, self.bias = fit_temperature(logits, labels, self.fit_bias)
    return self

  def predict(self, logits):
    z = np.asarray(logits, np.float64) / self.temperature + self.bias
    return 1.0 / (1.0 + np.exp(-z))

  def layer(self, name: str = ''):
    prefix = f'{name}_' if name else ''
    scaling = TemperatureScaling(name=f'{prefix}{self.name}_scaling')
    inputs = keras.Input(shape=(1,))
    model = keras.Model(inputs, keras.layers.Activation('sigmoid')(scaling(inputs)),
                        name=f'{prefix}{self.name}_calibration')
    scaling.set_calibration(self.temperature, self.bias)
    return model


class IsotonicCalibrator(Calibrator):
  """Isotonic regression of the label on the predicted probability (scikit-learn's fit),
  kept as at most ``max_knots`` interpolation knots."""
  name = 'isotonic'

  def __init__(self, max_knots: int = 256):
    self.max_knots = max_knots
    self.knots_x = self.knots_y = None

  def fit(self, logits, labels):
    from sklearn.isotonic import IsotonicRegression
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64).ravel()))
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds='clip').fit(
        p, np.asarray(labels, np.float64).ravel())
    x, y = iso.X_thresholds_, iso.y_thresholds_
    if len(x) > self.max_knots:
      keep = np.unique(np.linspace(0, len(x) - 1, self.max_knots).round().astype(int))
      x, y = x[keep], y[keep]
    if len(x) < 2:  # a constant curve (e.g. one distinct prediction)
      x, y = np.array([0.0, 1.0]), np.array([y[0], y[0]])
    self.knots_x, self.knots_y = x, y
    return self

  def predict(self, logits):
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    return np.interp(p, self.knots_x, self.knots_y)

  def layer(self, name: str = ''):
    return IsotonicCalibration(self.knots_x, self.knots_y,
                               name=f'{name}_isotonic_calibration' if name else
                               'isotonic_calibration')


class NoCalibration(Calibrator):
  """The model's own probabilities, ``sigmoid(logit)``."""
  name = 'none'

  def fit(self, logits, labels):
    return self

  def predict(self, logits):
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))

  def layer(self, name: str = ''):
    return keras.layers.Activation('sigmoid', name=f'{name}_no_calibration' if name
                                   else 'no_calibration')


def expected_calibration_error(probabilities, labels, bins: int = 10,
                               equal_mass: bool = False, weights=None) -> float:
  """ECE = sum over bins of |sum(w * (label - p))| / sum(w), with w = 1 by default.

  Bins are equal-width on [0, 1], or with ``equal_mass`` hold equal shares of the total
  weight (of the examples, when unweighted), in order of the prediction. Examples of weight
  0 (such as non-clicks when CVR is measured on clicks) take no part.
  """
  p = np.asarray(probabilities, np.float64).ravel()
  y = np.asarray(labels, np.float64).ravel()
  if p.shape != y.shape or p.size == 0:
    raise ValueError(f'need equally many probabilities and labels, got {p.size}, {y.size}')
  w = np.ones_like(p) if weights is None else np.asarray(weights, np.float64).ravel()
  if w.shape != p.shape or np.any(w < 0):
    raise ValueError('weights must be one non-negative number per probability')
  keep = w > 0
  p, y, w = p[keep], y[keep], w[keep]
  total = w.sum()
  if total == 0:
    return float('nan')
  if equal_mass:
    order = np.argsort(p, kind='stable')
    before = np.cumsum(w[order]) - w[order]            # weight ahead of each example
    idx = np.empty(p.size, np.int64)
    idx[order] = np.minimum((before * bins / total).astype(np.int64), bins - 1)
  else:
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
  gap = np.bincount(idx, weights=w * (y - p), minlength=bins)
  return float(np.abs(gap).sum() / total)


CALIBRATORS = {'none': NoCalibration,
               'temperature': lambda: TemperatureCalibrator(False),
               'platt': lambda: TemperatureCalibrator(True),
               'isotonic': IsotonicCalibrator}


def make_calibrator(name: str) -> Calibrator:
  if name not in CALIBRATORS:
    raise ValueError(f'unknown calibration {name!r}; choose from {sorted(CALIBRATORS)}')
  return CALIBRATORS[name]()


def calibrator_from_dict(state: Dict[str, Any]) -> Calibrator:
  """The calibrator :meth:`Calibrator.to_dict` wrote."""
  state = dict(state)
  out = make_calibrator(state.pop('method'))
  for k, v in state.items():
    if not hasattr(out, k):
      raise ValueError(f'calibration {out.name}: unknown field {k!r}')
    setattr(out, k, np.asarray(v, np.float64) if isinstance(v, list) else v)
  return out
