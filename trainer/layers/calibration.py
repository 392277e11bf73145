"""Temperature scaling of task logits, fitted after training on the validation split.

:class:`TemperatureScaling` maps a logit ``z`` to ``z / T + b``; ``T`` and ``b`` are
non-trainable weights, so they are saved inside the SavedModel and serving returns
calibrated probabilities. :func:`fit_temperature` finds them by minimising the binary
negative log-likelihood on held-out (logit, label) pairs (Guo et al., 2017), with the
bias optional (with the bias this is Platt scaling on the logit).
"""

from __future__ import annotations

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from typing import Tuple  # noqa: E402

import numpy as np  # noqa: E402
from scipy import optimize  # noqa: E402
import tf_keras as keras  # noqa: E402


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



