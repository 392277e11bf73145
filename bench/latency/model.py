"""bench.latency's model of one Predict call (see the package's docstring): each part's
linear terms, their non-negative least-squares fit, the leave-one-model-out check, and the
M/M/1 queue that predicts where the 100 ms p99 target breaks."""
from __future__ import annotations

import numpy as np

PARTS = ('decode', 'graph', 'encode')
TARGET_MS = 100.0


def regressors(part, b, m, p):
  """The x of each part's linear model for batch b of model m (measurements p)."""
  return {'decode': [1.0, p['request_bytes']],
          'graph': [1.0, m['features'], b * m['features'], b * m['dense_parameters']],
          'encode': [1.0, b],
          'network': [1.0, p['request_bytes'] + p['response_bytes']]}[part]


TERMS = {'decode': ('a', 'k per request byte'),
         'graph': ('a: per run', 'c per feature', 'k per batch x feature',
                   'k per batch x dense parameter'),
         'encode': ('a', 'k per example'),
         'network': ('a', 'k per request + response byte')}


def fit(models):
  """{part: coefficients} by non-negative least squares (scipy.optimize.nnls) over every
  model and batch: each part on its own timings, the network on what the end-to-end
  latency leaves after the parts."""
  from scipy.optimize import nnls
  coef = {}
  for part in PARTS + ('network',):
    X, y = [], []
    for m in models.values():
      for b, p in m['parts'].items():
        X.append(regressors(part, b, m, p))
        y.append(p[part] if part != 'network' else m['e2e'][b] - sum(p[k] for k in PARTS))
    X = np.asarray(X)
    scale = np.abs(X).max(axis=0)    # columns of bytes and parameters: keep NNLS conditioned
    coef[part] = [float(v) for v in nnls(X / scale, np.asarray(y))[0] / scale]
  return coef


def predict(coef, b, m, p):
  """Predicted ms of each part, the graph split into its fixed run cost, Transform (the
  feature terms) and model (the dense-parameter term), and the total."""
  out = {part: float(np.dot(coef[part], regressors(part, b, m, p)))
         for part in ('decode', 'encode', 'network')}
  a, c, kf, kp = coef['graph']
  out.update(graph_run=a, transform=c * m['features'] + kf * b * m['features'],
             model=kp * b * m['dense_parameters'])
  out['total'] = sum(out.values())
  return out


SHOWN = ('decode', 'graph_run', 'transform', 'model', 'encode', 'network')


def check(models, coef):
  """Each model x batch: the prediction of the fit on all four models (its breakdown),
  and the held-out prediction, from the fit on the other three models alone."""
  checks = []
  for name, m in models.items():
    held_out = fit({k: v for k, v in models.items() if k != name})
    for b in m['parts']:
      pred = predict(coef, b, m, m['parts'][b])
      out = predict(held_out, b, m, m['parts'][b])['total']
      checks.append({'model': name, 'batch': b, 'predicted': pred, 'measured': m['e2e'][b],
                     'error': pred['total'] / m['e2e'][b] - 1, 'held_out': out,
                     'held_out_error': out / m['e2e'][b] - 1})
      print(name, b, f'fit {pred["total"]:.2f} held out {out:.2f} measured '
            f'{m["e2e"][b]:.2f}', flush=True)
  return checks


def queue_p99_ms(rate, mu):
  """p99 latency (ms) of an M/M/1 queue with service rate ``mu`` at arrival ``rate``: the
  response time is exponential with rate mu - rate, so p99 = ln(100) / (mu - rate); inf
  at or above capacity."""
  if rate >= mu:
    return float('inf')
  return 1e3 * np.log(100) / (mu - rate)


def break_rate(mu, target_ms=TARGET_MS):
  """The arrival rate at which :func:`queue_p99_ms` reaches ``target_ms``."""
  return max(mu - np.log(100) / (target_ms / 1e3), 0.0)




def predict_load(load):
  """``load`` (:func:`bench.latency.measure.load_test`'s) with the queue's predictions
  added: the break rate, and each offered rate's p99, from the capacity mu alone."""
  mu = load['mu']
  rates = [dict(r, predicted_p99_ms=queue_p99_ms(r['offered'], mu)) for r in load['rates']]
  return dict(load, rates=rates, break_predicted=break_rate(mu))
