"""The wide part's logistic regression solved to convergence, with one prior variance per
table, beside the deep part (the Trainer's ``wide_fit``: ``backfit`` after the joint
training, ``first`` before it; trainer.task).

Why: the wide part (:class:`trainer.layers.wide.WideCrossLogit`) is a logistic
regression on the ids, the crossed columns and the numeric fields, a convex problem. Trained
jointly with the deep part, it gets what the deep part's budget leaves it: a few passes of
Adagrad whose noisy per-cell gradients move a crossed column's cell or a rare id's weight a
fraction of the way to its optimum before early stopping ends the run (the one-epoch
phenomenon of the deep part sets that budget). Measured on the generated data (seed 0): the
jointly trained model's logit carries a third of the age x category and inventory x hour
effects, while the same design solved as a plain logistic regression, with its L2 chosen on
the eval split, alone reaches test AUC 0.761, above the whole jointly trained model (0.759).

So :func:`fit_wide` solves it, on the layer's own design (one column per table row:
:func:`design`), with one prior variance per table set by empirical Bayes, the eval
split's logloss deciding when to stop, and optionally a fixed logit per row beside it (the
offset: the rest of the trained model's logit, as a GBDT's ``init_score``). Measured on
the same rows, without an offset: a single L2 chosen on eval gives test AUC 0.761;
per-table variances after three updates 0.771 (the oracle that knows the generator's
form: 0.775). The solution is written into the layer's tables. The solver is scipy's
L-BFGS on scikit-learn's objective (:func:`solve`), because sklearn's
``LogisticRegression`` takes no offset; the design matrix and the variance updates are
written here because no library knows the layer's table layout or fits a GLMM's
variances at this scale.
"""

from __future__ import annotations

import time

from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from trainer.layers.wide import WideCrossLogit, wide_parts
from transform.preprocessing import transformed_name

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
# The backfit's EB path (trainer.task.backfit_wide) also stops once a step gains less than
# this fraction of the eval logloss. Measured in a scratch run (generated seed 0, 800k
# rows, 377k columns): after the first refit, steps 1-4 gained 0.55%, 0.16%, 0.06%, 0.04%
# and steps 5-8 0.05% together (eval AUC 0.7762 after step 4, 0.7767 after step 8), at
# 40-100 s a step on two busy cores.
BACKFIT_MIN_GAIN = 5e-4


def input_names(layer: WideCrossLogit) -> Tuple[List[str], List[str]]:
  """The transformed names of the categorical and the numeric fields ``layer`` reads."""
  spec = layer._spec  # pylint: disable=protected-access
  return ([transformed_name(f.name) for f in spec.categorical],
          [transformed_name(f.name) for f in spec.numeric])


def gather(batches: Iterable, layer: WideCrossLogit, label: str, max_rows: int,
           offset: Optional[Callable[[Dict], np.ndarray]] = None) -> Tuple:
  """The fields ``layer`` reads, and ``label``, of up to ``max_rows`` rows of ``batches``
  (``(features, labels)`` pairs, as the Trainer's datasets yield them), as NumPy:
  ``(features, labels)``, or with ``offset`` (a batch's features -> each row's fixed
  logit, as :func:`fit_wide` takes it) ``(features, labels, offsets)``."""
  cats, nums = input_names(layer)
  cols: Dict[str, list] = {k: [] for k in cats + nums}
  ys, offsets, rows = [], [], 0
  for x, y in batches:
    for k in cols:
      cols[k].append(np.asarray(x[k]).reshape(-1))
    ys.append(np.asarray(y[label], np.float64).reshape(-1))
    if offset is not None:
      offsets.append(np.asarray(offset(x), np.float64).reshape(-1))
    rows += len(ys[-1])
    if rows >= max_rows:
      break
  if not ys:
    raise ValueError('fitting the wide part needs at least one batch of rows')
  out = {k: np.concatenate(v)[:max_rows] for k, v in cols.items()}
  if offset is None:
    return out, np.concatenate(ys)[:max_rows]
  return out, np.concatenate(ys)[:max_rows], np.concatenate(offsets)[:max_rows]


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


def _variables(layer: WideCrossLogit) -> list:
  """``layer``'s weight variables in :func:`design` order, each [rows, 1]."""
  out = [t.embeddings for t in layer.first.values()]
  out += [layer.cross[f'{a}_x_{b}'].embeddings for a, b in layer.pairs]
  if hasattr(layer, 'numeric'):
    out.append(layer.numeric)
  return out


def assign(layer: WideCrossLogit, coef: np.ndarray, intercept: float) -> None:
  """Writes :func:`design`-ordered coefficients into ``layer``'s tables."""
  offset = 0
  for v in _variables(layer):
    rows = int(v.shape[0])
    v.assign(coef[offset:offset + rows, None].astype(np.float32))
    offset += rows
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


def current(layer: WideCrossLogit) -> Tuple[np.ndarray, float]:
  """``layer``'s weights in :func:`design` order, and its bias: what :func:`assign`
  wrote."""
  return (np.concatenate([v.numpy().ravel() for v in _variables(layer)]).astype(np.float64),
          float(layer.bias.numpy()[0]))


def solve(x: sp.csr_matrix, y: np.ndarray, offset: np.ndarray, variance: np.ndarray,
          coef: np.ndarray, intercept: float, max_iter: int = 300, tol: float = 1e-6,
          xt: Optional[sp.csr_matrix] = None) -> Tuple[np.ndarray, float, int]:
  """The MAP logistic regression ``y ~ x @ coef + intercept + offset`` under the prior
  ``coef_j ~ N(0, variance_j)`` (the intercept unpenalised), by L-BFGS from ``(coef,
  intercept)``: (coef, intercept, iterations). The objective is scikit-learn's (the mean
  logloss plus ``sum coef^2 / (2 n variance)``) with its ``gtol`` and ``ftol``; sklearn's
  ``LogisticRegression`` has no offset (a GBDT's ``init_score``), which the backfit
  needs, hence scipy's L-BFGS directly. ``xt``: ``x``'s transpose as CSR, where the
  caller solves on the same ``x`` again."""
  from scipy.optimize import minimize
  n = x.shape[0]
  xt = x.T.tocsr() if xt is None else xt

  def objective(theta):
    w, b = theta[:-1], theta[-1]
    z = x @ w + (b + offset)
    r = expit(z) - y
    loss = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(w * w / variance)
    grad = np.append(xt @ r + w / variance, r.sum())
    return loss / n, grad / n

  result = minimize(objective, np.append(coef, intercept), jac=True, method='L-BFGS-B',
                    options={'maxiter': max_iter, 'gtol': tol,
                             'ftol': 64 * np.finfo(float).eps})
  return result.x[:-1], float(result.x[-1]), int(result.nit)


def fit_wide(layer: WideCrossLogit, train: Tuple, evaluation: Tuple,
             steps: int = EB_STEPS, max_iter: int = 300, tol: float = 1e-6,
             warm_start: bool = False, scale: float = 1.0, min_gain: float = 0.0) -> Dict:
  """Solves ``layer``'s logistic regression on ``train`` (:func:`gather`'s
  ``(features, labels)``, or ``(features, labels, offsets)``: a fixed logit per row that
  the regression adds to, as a GBDT's ``init_score``) with one prior variance per
  table, set by empirical Bayes; writes the solution into ``layer`` and returns a report
  (the variances, the path's eval loglosses, seconds).

  Each table's weights (an id field's, a crossed column's) are a random effect with its
  own prior variance, as in a GLMM: one global L2 must either leave the many noise cells
  of a large crossed column unshrunk or shrink a small, informative one (age x category)
  to half its size. The variances start at :data:`INITIAL_VARIANCE` and follow MacKay's
  fixed point (type-II maximum likelihood with the Hessian's diagonal): ``var_t = sum_j
  w_j^2 / sum_j gamma_j``, where ``gamma_j = h_j / (h_j + 1 / var_t)`` is how far the
  data determine weight ``j`` (``h_j``: its rows' summed ``p (1 - p)``). Each step
  refits (:func:`solve`), warm-started; the step with the lowest eval logloss is kept,
  and the path stops when the eval logloss rises.

  ``warm_start``: the path starts from the layer's own weights, and a step is kept only
  where it beats their eval logloss; where none does, the layer is left as it was
  (``report['kept']`` False). ``scale``: the layer's logit enters the model's logit
  times this (a multi-task head's ``body_scale``); the regression fits the product.
  ``min_gain``: the path also stops after a step that lowers the eval logloss by less
  than this fraction (the step is kept).
  """
  from sklearn.metrics import log_loss
  if steps < 0:
    raise ValueError(f'steps must be >= 0, got {steps}')
  if not np.isfinite(scale) or scale == 0:
    raise ValueError(f'scale must be finite and non-zero, got {scale}')
  start = time.time()
  x_train, y_train = design(layer, train[0]), train[1]
  x_eval, y_eval = design(layer, evaluation[0]), evaluation[1]
  off_train = train[2] if len(train) > 2 else np.zeros(len(y_train))
  off_eval = evaluation[2] if len(evaluation) > 2 else np.zeros(len(y_eval))
  for name, y, off in (('training', y_train, off_train), ('eval', y_eval, off_eval)):
    if not np.all((y == 0) | (y == 1)):
      raise ValueError(f'the wide part is fitted to a binary label; the {name} rows hold '
                       f'{sorted(set(np.unique(y)) - {0.0, 1.0})[:5]}')
    if len(off) != len(y) or not np.all(np.isfinite(off)):
      raise ValueError(f'the {name} rows\' offsets must be finite, one per row')
  if len(np.unique(y_train)) < 2:
    raise ValueError('the training rows hold one class only: nothing to fit')
  blocks = tables(layer)
  group = np.repeat(np.arange(len(blocks)), [n for _, n in blocks])
  random = np.array([name != 'numeric' for name, _ in blocks])
  variance = np.where(random, INITIAL_VARIANCE, NUMERIC_VARIANCE)
  squares = x_train.multiply(x_train).tocsc()

  x_train_t = x_train.T.tocsr()

  def eval_logloss(coef, intercept):
    return float(log_loss(y_eval, expit(x_eval @ coef + intercept + off_eval),
                          labels=[0, 1]))

  if warm_start:
    coef, intercept = current(layer)
    coef, intercept = coef * scale, intercept * scale
    best = (eval_logloss(coef, intercept), None, None, None)
  else:
    coef, intercept = np.zeros(x_train.shape[1]), 0.0
    best = None
  before = None if best is None else best[0]
  path = []
  for step in range(steps + 1):
    coef, intercept, iterations = solve(x_train, y_train, off_train, variance[group], coef,
                                        intercept, max_iter, tol, x_train_t)
    loss = eval_logloss(coef, intercept)
    path.append({'eval_logloss': loss, 'iterations': iterations})
    if best is not None and loss >= best[0]:
      break
    gain = 1.0 if best is None else (best[0] - loss) / best[0]
    best = (loss, coef.copy(), intercept, variance.copy())
    if step == steps or (step > 0 and gain < min_gain):
      break
    p = expit(x_train @ coef + intercept + off_train)
    h = squares.T @ (p * (1 - p))
    gamma = h / (h + 1.0 / variance[group])
    for t in np.flatnonzero(random):
      seen = (group == t) & (h > 0)
      if gamma[seen].sum() > 0:
        variance[t] = max(float(np.sum(coef[seen] ** 2) / gamma[seen].sum()),
                          MIN_VARIANCE)
  loss, coef, intercept, variance = best
  kept = coef is not None
  if kept:
    assign(layer, coef / scale, intercept / scale)
  report = {'eval_logloss': loss, 'steps': len(path) - 1, 'path': path,
            'train_rows': int(x_train.shape[0]), 'columns': int(x_train.shape[1]),
            'seconds': round(time.time() - start, 1)}
  if kept:
    report['variances'] = {name: round(float(v), 5) for (name, _), v in zip(blocks, variance)}
  if warm_start:
    report.update(eval_logloss_before=before, kept=kept)
  return report


def find(model) -> Optional[WideCrossLogit]:
  """The wide part of a Keras ``model`` (None without one)."""
  found = wide_parts(model)
  if len(found) > 1:
    raise ValueError(f'{len(found)} wide parts in one model; expected at most one')
  return found[0] if found else None
