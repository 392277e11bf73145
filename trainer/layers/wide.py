"""The wide part of Wide & Deep (Cheng et al., 2016): a logistic regression on the ids
and on crosses of small categorical fields, added to the deep model's logit.

A deep model learns an interaction between two fields (age group x ad category, the
inventory x the hour) only through its embeddings and MLP. With a few thousand clicks it
learns them slowly or not at all, while a per-cell weight of the crossed column is a
plain, well-posed estimate that a GBDT finds with a few splits. :class:`WideCrossLogit`
gives the deep model that estimate:

    logit_wide = sum_f w_f[id_f]  +  sum_{(a, b) in crosses} w_ab[id_a * n_b + id_b]
                 + sum_k beta_k x_k

* one weight per id of every categorical field (the first-order term, ids included: a
  user's or an ad's own click rate);
* one weight per cell of every pair of categorical fields whose cells number at most
  ``max_cells`` (exact crosses, no hashing: a pair that would need hashing is left out);
* one weight per numeric field (a linear term).

The crosses are chosen from the cardinalities alone, so any spec gets them; the Trainer
sets ``max_cells`` from its training rows and label rate
(:func:`trainer.models.blocks.with_wide_cells`). The tables are ``Embedding`` layers of
width 1 (their variables are named ``embeddings``), so they train with the embedding
optimiser (:func:`trainer.optimization.make_optimizer`; the crossed columns optionally
with FTRL) and carry the L2 penalty ``l2`` (``cross_l2`` on the crossed columns). TFRS
and Keras have crossed feature columns only in the
removed ``tf.feature_column`` API, hence this layer.
"""

from __future__ import annotations

import itertools

from typing import Dict, List, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE
from transform import feature_spec as fs
from transform.preprocessing import transformed_name


def crosses(spec: fs.FeatureSpec, cardinalities: Dict[str, int],
            max_cells: int) -> List[Tuple[str, str]]:
  """The pairs of categorical fields (spec order) whose crossed column has at most
  ``max_cells`` cells."""
  names = [f.name for f in spec.categorical]
  return [(a, b) for a, b in itertools.combinations(names, 2)
          if cardinalities[a] * cardinalities[b] <= max_cells]


def wide_parts(model) -> List['WideCrossLogit']:
  """The :class:`WideCrossLogit` layers of a Keras ``model``, at any depth."""
  return [m for m in model.submodules if isinstance(m, WideCrossLogit)]


def parameter_count(spec: fs.FeatureSpec, cardinalities: Dict[str, int],
                    max_cells: int) -> int:
  return (sum(cardinalities[f.name] for f in spec.categorical) + len(spec.numeric) + 1
          + sum(cardinalities[a] * cardinalities[b]
                for a, b in crosses(spec, cardinalities, max_cells)))


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class WideCrossLogit(keras.layers.Layer):
  """``{<feature>_xf: tensor}`` -> [batch, 1], the wide logit (module docstring).

  Args:
    spec: the feature spec as a dict (what ``get_config`` stores).
    cardinalities: ids per categorical field, OOV included.
    max_cells: the largest crossed column kept.
    l2: L2 penalty on every weight table.
    cross_l2: L2 penalty on the crossed columns' tables instead (None: ``l2``). A cross
      cell has many rows and a first-order id often has few, so the two may want
      different priors.
  """

  def __init__(self, spec: Dict, cardinalities: Dict[str, int], max_cells: int = 20_000,
               l2: float = 0.0, cross_l2: Optional[float] = None, **kwargs):
    super().__init__(**kwargs)
    if max_cells < 0 or l2 < 0 or (cross_l2 is not None and cross_l2 < 0):
      raise ValueError(f'max_cells, l2 and cross_l2 must be non-negative, got {max_cells}, '
                       f'{l2}, {cross_l2}')
    self.cross_l2 = cross_l2
    self.spec_dict = spec
    self.cardinalities = {k: int(v) for k, v in cardinalities.items()}
    self.max_cells = max_cells
    self.l2 = l2
    self._spec = fs.from_dict(spec)
    self.pairs = crosses(self._spec, self.cardinalities, max_cells)

  def build(self, input_shape):
    reg = keras.regularizers.l2(self.l2) if self.l2 else None
    cross_l2 = self.l2 if self.cross_l2 is None else self.cross_l2
    cross_reg = keras.regularizers.l2(cross_l2) if cross_l2 else None
    table = lambda rows, name, r=reg: keras.layers.Embedding(  # noqa: E731
        rows, 1, embeddings_initializer='zeros', embeddings_regularizer=r, name=name)
    self.first = {f.name: table(self.cardinalities[f.name], f'wide_{f.name}')
                  for f in self._spec.categorical}
    # String keys: Keras tracks a dict of layers only when its keys are strings.
    self.cross = {f'{a}_x_{b}': table(self.cardinalities[a] * self.cardinalities[b],
                                      f'wide_{a}_x_{b}', cross_reg) for a, b in self.pairs}
    if self._spec.numeric:
      self.numeric = self.add_weight('wide_numeric', shape=(len(self._spec.numeric), 1),
                                     initializer='zeros', regularizer=reg)
    self.bias = self.add_weight('wide_bias', shape=(1,), initializer='zeros')
    super().build(input_shape)

  def call(self, inputs):
    ids = {f.name: tf.cast(inputs[transformed_name(f.name)], tf.int64)
           for f in self._spec.categorical}
    parts = [self.first[n](ids[n]) for n in self.first]                  # [b, 1] each
    for a, b in self.pairs:
      parts.append(self.cross[f'{a}_x_{b}'](ids[a] * self.cardinalities[b] + ids[b]))
    if self._spec.numeric:
      x = tf.stack([tf.cast(inputs[transformed_name(f.name)], self.compute_dtype)
                    for f in self._spec.numeric], axis=1)
      parts.append(tf.matmul(x, self.numeric))
    if not parts:
      raise ValueError('WideCrossLogit needs a categorical or numeric field')
    return tf.add_n(parts) + self.bias

  @property
  def cross_tables(self) -> List[tf.Variable]:
    """The crossed columns' weight tables (built layers only)."""
    return [t.embeddings for t in self.cross.values()]

  def get_config(self):
    config = super().get_config()
    config.update(spec=self.spec_dict, cardinalities=self.cardinalities,
                  max_cells=self.max_cells, l2=self.l2, cross_l2=self.cross_l2)
    return config
