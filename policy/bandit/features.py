"""Feature maps phi(x, a) for :class:`policy.bandit.thompson.LinearBandit`.

A feature map is called with a batch of contexts and returns (n, arms, d): the features
each arm would have in each context. Here contexts are row indices into a pool whose
features are computed once (:class:`ArrayFeatures`), which is what a replay or a
simulation over a fixed set of impressions needs.

* :func:`one_hot`: disjoint per-arm linear models over one-hot categorical context
  columns (with an intercept per arm): linear TS.
* :func:`neural`: the CTR model's last hidden layer under each arm, read from a pushed
  SavedModel's ``last_hidden`` signature (:mod:`trainer.export`), plus an intercept;
  one shared weight vector, since the representation already depends on the arm:
  neural-linear TS.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from serving import signatures as sig


class ArrayFeatures:
  """phi for the rows of a pool, precomputed: ``phi`` (rows, arms, d)."""

  def __init__(self, phi: np.ndarray):
    if phi.ndim != 3:
      raise ValueError(f'phi must be (rows, arms, d), got shape {phi.shape}')
    self.phi = phi
    self.rows, self.n_arms, self.dim = phi.shape

  def __call__(self, contexts) -> np.ndarray:
    idx = np.asarray(contexts)
    if idx.size and (idx.min() < 0 or idx.max() >= self.rows):
      raise IndexError(f'contexts are rows of the pool: 0..{self.rows - 1}, got '
                       f'{idx.min()}..{idx.max()}')
    return self.phi[idx]


def one_hot(columns: Dict[str, np.ndarray], cardinalities: Dict[str, int],
            n_arms: int) -> ArrayFeatures:
  """Per arm: [1, one-hot of each column]; the arms' blocks are disjoint."""
  rows = len(next(iter(columns.values())))
  parts = [np.ones((rows, 1))]
  for name, card in cardinalities.items():
    v = np.asarray(columns[name])
    if v.min() < 0 or v.max() >= card:
      raise ValueError(f'{name} has values outside [0, {card})')
    parts.append(np.eye(card)[v])
  x = np.concatenate(parts, axis=1)                        # (rows, k)
  k = x.shape[1]
  phi = np.zeros((rows, n_arms, n_arms * k))
  for a in range(n_arms):
    phi[:, a, a * k:(a + 1) * k] = x
  return ArrayFeatures(phi)


def neural(model_dir: str, table, spec, action_key: str, n_arms: int,
           batch_size: int = 4096) -> ArrayFeatures:
  """[1, last_hidden(x with action a)] for every row of ``table`` and arm a."""
  import pyarrow as pa
  import tensorflow as tf
  from transform import local
  loaded = tf.saved_model.load(model_dir)
  if sig.LAST_HIDDEN not in loaded.signatures:
    raise ValueError(f'{model_dir} has no last_hidden signature (a neural model exported '
                     f'by trainer.export has one; GBDT models do not)')
  fn = loaded.signatures[sig.LAST_HIDDEN]
  out = []
  for a in range(n_arms):
    t = table.set_column(table.schema.get_field_index(action_key), action_key,
                         pa.array(np.full(table.num_rows, a, np.int64)))
    hs = []
    for lo in range(0, t.num_rows, batch_size):
      ex = local.serialize_examples(t.slice(lo, batch_size), spec)
      hs.append(fn(**{sig.EXAMPLES: tf.constant(ex)})[sig.HIDDEN].numpy())
    h = np.concatenate(hs)
    out.append(np.concatenate([np.ones((len(h), 1)), h], axis=1))
  return ArrayFeatures(np.stack(out, axis=1).astype(np.float64))


def standardize(f: ArrayFeatures, skip: Sequence[int] = (0,)) -> ArrayFeatures:
  """Columns scaled to unit variance over the pool (the intercept ``skip``ped), so one
  prior precision suits every column."""
  phi = f.phi.copy()
  flat = phi.reshape(-1, f.dim)
  sd = flat.std(axis=0)
  cols = [j for j in range(f.dim) if j not in skip and sd[j] > 0]
  phi[:, :, cols] = phi[:, :, cols] / sd[cols]
  return ArrayFeatures(phi)
