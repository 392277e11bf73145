"""The wide part fitted first: its logistic regression solved to convergence, then held
fixed while the deep part trains on top of it.

Why: the wide part (:class:`trainer.layers.wide.WideCrossLogit`) is a logistic
regression on the ids, the crossed columns and the numeric fields, a convex problem. Trained
jointly with the deep part, it gets what the deep part's budget leaves it: a few passes of
Adagrad whose noisy per-cell gradients move a crossed column's cell or a rare id's weight a
fraction of the way to its optimum before early stopping ends the run (the one-epoch
phenomenon of the deep part sets that budget). Measured on the generated data (seed 0): the
jointly trained model's logit carries a third of the age x category and inventory x hour
effects, while the same design solved as a plain logistic regression, with its L2 chosen on
the eval split, alone reaches test AUC 0.761, above the whole jointly trained model (0.759).

So :func:`fit_wide` solves it first, as Wide & Deep's wide part was trained and as a GBDT's
``init_score`` is used: scikit-learn's ``LogisticRegression`` (L-BFGS) on the layer's own
design (one column per table row: :func:`design`), with one prior variance per table set by
empirical Bayes (:func:`fit_wide`), the eval split's logloss deciding when to stop. Measured
on the same rows: a single L2 chosen on eval gives test AUC 0.761; per-table variances after
three updates 0.771 (the oracle that knows the generator's form: 0.775). The solution is
written into the layer's tables, and the Trainer then freezes the layer: the deep part
learns the residual, with its own early stopping. A hand-written solver would only repeat
sklearn's; the design matrix and the variance updates are written here because no library
knows the layer's table layout or fits a GLMM's variances at this scale.
"""

from __future__ import annotations

import os
import time

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from typing import Dict, Iterable, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from trainer.layers.wide import WideCrossLogit, wide_parts  # noqa: E402
from transform.preprocessing import transformed_name  # noqa: E402

# Empirical Bayes (fit_wide): every table's prior variance starts at INITIAL_VARIANCE
# (prior s.d. 0.17: the single L2 the eval split chose on the generated data; from there
# the fixed point raises the informative tables' variances step by step. A start at 0.3,
# 4 steps of 150 iterations, left the generated data's seed 0 at test AUC 0.7597);
# the numeric slopes' stays at NUMERIC_VARIANCE (z-scored inputs: a weak prior); a
# table's variance never falls below MIN_VARIANCE. At most EB_STEPS updates.
INITIAL_VARIANCE = 0.03
NUMERIC_VARIANCE = 1.0
MIN_VARIANCE = 1e-4
EB_STEPS = 8


def input_names(layer: WideCrossLogit) -> Tuple[List[str], List[str]]:
  """The transformed names of the categorical and the numeric fields ``layer`` reads."""
  spec = layer._spec  # pylint: disable=protected-access
  return ([transformed_name(f.name) for f in spec.categorical],
          [transformed_name(f.name) for f in spec.numeric])


def gather(batches: Iterable, layer: WideCrossLogit, label: str, max_rows: int
           ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
  """The fields ``layer`` reads, and ``label``, of up to ``max_rows`` rows of ``batches``
  (``(features, labels)`` pairs, as the Trainer's datasets yield them), as NumPy."""
  cats, nums = input_names(layer)
  cols: Dict[str, list] = {k: [] for k in cats + nums}
  ys, rows = [], 0
  for x, y in batches:
    for k in cols:
      cols[k].append(np.asarray(x[k]).reshape(-1))
    ys.append(np.asarray(y[label], np.float64).reshape(-1))
    rows += len(ys[-1])
    if rows >= max_rows:
      break
  if not ys:
    raise ValueError('fitting the wide part needs at least one batch of rows')
  out = {k: np.concatenate(v)[:max_rows] for k, v in cols.items()}
  return out, np.concatenate(ys)[:max_rows]


def design(layer: WideCrossLogit, features: Dict[str, np.ndarray]) -> sp.csr_matrix:
  """The wide part as a sparse design matrix: one column per row of each first-order
  table (spec order), then per cell of each crossed column (``layer.pairs`` order), then
  one per numeric field; :func:`assign` reads its coefficients back in this order."""
  cats, nums = input_names(layer)
  cards = layer.cardinalities
  names = [f.name for f in layer._spec.categorical]  # pylint: disable=protected-access
  ids = {}
  for n, key in zip(names, cats):
    v = features[key].astype(np.int64)
    if v.size and (v.min() < 0 or v.max() >= cards[n]):
      raise ValueError(f'{n}: ids outside [0, {cards[n]}) in the wide part\'s rows')
    ids[n] = v
  rows = len(next(iter(features.values())))
  columns, offset = [], 0
  for n in names:
    columns.append(offset + ids[n])
    offset += cards[n]
  for a, b in layer.pairs:
    columns.append(offset + ids[a] * cards[b] + ids[b])
    offset += cards[a] * cards[b]
  width = offset + len(nums)
  k = len(columns)
  indptr = np.arange(rows + 1, dtype=np.int64) * (k + len(nums))
  if nums:
    numeric = np.stack([features[c].astype(np.float64) for c in nums], axis=1)
    if not np.all(np.isfinite(numeric)):
      raise ValueError('the wide part\'s numeric fields hold NaN or inf')
    indices = np.concatenate([np.stack(columns, axis=1),
                              np.broadcast_to(offset + np.arange(len(nums)),
                                              (rows, len(nums)))], axis=1)
    data = np.concatenate([np.ones((rows, k)), numeric], axis=1)
  else:
    indices, data = np.stack(columns, axis=1), np.ones((rows, k))
  return sp.csr_matrix((data.ravel(), indices.ravel(), indptr), shape=(rows, width))


def assign(layer: WideCrossLogit, coef: np.ndarray, intercept: float) -> None:
  """Writes :func:`design`-ordered coefficients into ``layer``'s tables."""
  offset = 0
  for n, table in layer.first.items():
    rows = layer.cardinalities[n]
    table.embeddings.assign(coef[offset:offset + rows, None].astype(np.float32))
    offset += rows
  for a, b in layer.pairs:
    cells = layer.cardinalities[a] * layer.cardinalities[b]
    layer.cross[f'{a}_x_{b}'].embeddings.assign(
        coef[offset:offset + cells, None].astype(np.float32))
    offset += cells
  if hasattr(layer, 'numeric'):
    layer.numeric.assign(coef[offset:, None].astype(np.float32))
  layer.bias.assign(np.array([intercept], np.float32))


def tables(layer: WideCrossLogit) -> List[Tuple[str, int]]:
  """(name, columns) of each block of :func:`design`, in its order: the first-order
  tables, the crossed columns (``<a>_x_<b>``), then ``numeric``."""
  cards = layer.cardinalities
  out = [(n, cards[n]) for n in layer.first]
  out += [(f'{a}_x_{b}', cards[a] * cards[b]) for a, b in layer.pairs]
  if hasattr(layer, 'numeric'):
    out.append(('numeric', int(layer.numeric.shape[0])))
  return out


def fit_wide(layer: WideCrossLogit, train: Tuple[Dict[str, np.ndarray], np.ndarray],
             evaluation: Tuple[Dict[str, np.ndarray], np.ndarray],
             steps: int = EB_STEPS, max_iter: int = 300, tol: float = 1e-6) -> Dict:
  """Solves ``layer``'s logistic regression on ``train`` ((features, labels):
  :func:`gather`) with one prior variance per table, set by empirical Bayes; writes the
  solution into ``layer`` and returns a report (the variances, the path's eval
  loglosses, seconds).

  Each table's weights (an id field's, a crossed column's) are a random effect with its
  own prior variance, as in a GLMM: one global L2 must either leave the many noise cells
  of a large crossed column unshrunk or shrink a small, informative one (age x category)
  to half its size. The variances start at :data:`INITIAL_VARIANCE` and follow MacKay's
  fixed point (type-II maximum likelihood with the Hessian's diagonal): ``var_t = sum_j
  w_j^2 / sum_j gamma_j``, where ``gamma_j = h_j / (h_j + 1 / var_t)`` is how far the
  data determine weight ``j`` (``h_j``: its rows' summed ``p (1 - p)``). Each step
  refits, warm-started; the step with the lowest eval logloss is kept, and the path
  stops when the eval logloss rises. sklearn fits one ``C``: the columns of table ``t``
  are scaled by ``sqrt(var_t)``, with ``C = 1``, which is the same prior.
  """
  from sklearn.linear_model import LogisticRegression
  from sklearn.metrics import log_loss
  if steps < 0:
    raise ValueError(f'steps must be >= 0, got {steps}')
  start = time.time()
  x_train, y_train = design(layer, train[0]), train[1]
  x_eval, y_eval = design(layer, evaluation[0]), evaluation[1]
  for name, y in (('training', y_train), ('eval', y_eval)):
    if not np.all((y == 0) | (y == 1)):
      raise ValueError(f'the wide part is fitted to a binary label; the {name} rows hold '
                       f'{sorted(set(np.unique(y)) - {0.0, 1.0})[:5]}')
  if len(np.unique(y_train)) < 2:
    raise ValueError('the training rows hold one class only: nothing to fit')
  blocks = tables(layer)
  group = np.repeat(np.arange(len(blocks)), [n for _, n in blocks])
  random = np.array([name != 'numeric' for name, _ in blocks])
  variance = np.where(random, INITIAL_VARIANCE, NUMERIC_VARIANCE)
  squares = x_train.multiply(x_train).tocsc()
  model = LogisticRegression(C=1.0, max_iter=max_iter, tol=tol, warm_start=True)
  coef, path, best = None, [], None
  for step in range(steps + 1):
    scale = np.sqrt(variance[group])
    if coef is not None:
      model.coef_ = (coef / scale)[None, :]
    model.fit(x_train @ sp.diags(scale), y_train)
    coef = model.coef_.ravel() * scale
    intercept = float(model.intercept_[0])
    p_eval = model.predict_proba(x_eval @ sp.diags(scale))[:, 1]
    loss = float(log_loss(y_eval, p_eval, labels=[0, 1]))
    path.append({'eval_logloss': loss, 'iterations': int(np.max(model.n_iter_))})
    if best is not None and loss >= best[0]:
      break
    best = (loss, coef.copy(), intercept, variance.copy())
    if step == steps:
      break
    p = model.predict_proba(x_train @ sp.diags(scale))[:, 1]
    h = squares.T @ (p * (1 - p))
    gamma = h / (h + 1.0 / variance[group])
    for t in np.flatnonzero(random):
      seen = (group == t) & (h > 0)
      if gamma[seen].sum() > 0:
        variance[t] = max(float(np.sum(coef[seen] ** 2) / gamma[seen].sum()),
                          MIN_VARIANCE)
  loss, coef, intercept, variance = best
  assign(layer, coef, intercept)
  return {'eval_logloss': loss, 'steps': len(path) - 1, 'path': path,
          'variances': {name: round(float(v), 5) for (name, _), v in zip(blocks, variance)},
          'train_rows': int(x_train.shape[0]), 'columns': int(x_train.shape[1]),
          'seconds': round(time.time() - start, 1)}


def find(model) -> Optional[WideCrossLogit]:
  """The wide part of a Keras ``model`` (None without one)."""
  found = wide_parts(model)
  if len(found) > 1:
    raise ValueError(f'{len(found)} wide parts in one model; expected at most one')
  return found[0] if found else None
