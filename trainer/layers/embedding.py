"""Field embeddings: every feature of a spec as one vector of a common width.

Models that treat the fields as a sequence (RE-SORT's retention streams, Transformers over
fields) or as a set (FM, AutoInt, DCN) need a [batch, fields, dim] tensor.
:class:`FieldEmbedding` builds it from the transformed features (``<name>_xf``) of a
:class:`transform.feature_spec.FeatureSpec`:

* categorical: an ``Embedding`` lookup of the id. Hashed fields are looked up the same
  way (their ids are hash buckets). With ``adaptive=True`` each field gets its own width
  (the spec's ``embedding_dim`` or one derived from its vocabulary size) and a linear
  projection to the common width, so a 2-value field does not pay for 64 dimensions.
* sequence: its token embeddings, pooled by a masked mean, or read by
  :class:`trainer.layers.sequence.TargetAttention` against the candidate when the spec
  gives the sequence a ``target`` field. A sequence with a target *shares* that field's
  table (row 0 is padding, the field's id ``i`` is row ``i + 1``), so a history token and
  the candidate that equal each other embed to the same vector.
* numeric (``numeric_encoding``): ``linear``, ``x * v_f + u_f``, a learned direction and
  offset per field, so the z-scored value sets the vector's position along the field's
  own axis; or ``periodic``, ``ReLU(W_f [sin(2 pi c_f x), cos(2 pi c_f x)] + b_f)`` with
  ``numeric_frequencies`` learned frequencies ``c_f`` per field, drawn from
  ``N(0, numeric_sigma)`` (the PLR embedding of Gorishniy et al., 2022, "On Embeddings for
  Numerical Features in Tabular Deep Learning"), plus the linear term, so a field's vector
  can move non-monotonically with its value (thresholds, peaks) before any interaction
  layer sees it.
* match count (``sequence_match``): for each sequence with a ``target``, one more field,
  ``<sequence>_matches``: the number of its tokens equal to the candidate (0 to
  ``max_len``), looked up in a table of its own, so the count's effect may take any shape.
  Attention cannot give it: its softmax weights sum to one, so "three of the twenty
  tokens are the candidate" and "one of one" read the same (DIN, Zhou et al., 2018,
  drops the softmax for this reason). A candidate in an OOV bucket matches nothing, since
  the bucket is many values; hashed ids compare as they are. LightGBM gets this count
  too, from the raw strings (:mod:`trainer.boosting`).

Fields come in the spec's order: categorical, numeric, sequence, then the match counts.
``dropout`` drops whole fields (embedding dropout) while training.
"""

from __future__ import annotations



from typing import Dict, List

import numpy as np
import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE
from trainer.layers.sequence import TargetAttention
from transform import feature_spec as fs
from transform.preprocessing import transformed_name

SEQUENCE_ENCODERS = ('mean', 'attention')
NUMERIC_ENCODINGS = ('linear', 'periodic')


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class MaskedMeanPooling(keras.layers.Layer):
  """Mean of a sequence's embeddings over its non-padding positions (zeros if empty)."""

  def call(self, inputs, mask=None):
    if mask is None:
      return tf.reduce_mean(inputs, axis=1)
    m = tf.cast(mask, inputs.dtype)[:, :, None]
    return tf.reduce_sum(inputs * m, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)

  def compute_mask(self, inputs, mask=None):
    return None


def table_sizes(spec: fs.FeatureSpec, cardinalities: Dict[str, int]) -> Dict[str, int]:
  """Rows of each embedding table, keyed by the field that owns it.

  A field that is some sequence's ``target`` owns a table one row larger (row 0 is the
  sequence's padding); that sequence has no table of its own.
  """
  targets = spec.targets()
  sizes = {}
  for f in spec.categorical:
    sizes[f.name] = cardinalities[f.name] + (1 if f.name in targets else 0)
  for f in spec.sequence:
    if not f.target:
      sizes[f.name] = cardinalities[f.name]
  return sizes


def match_name(sequence: str) -> str:
  """The field name of a sequence's match count (see the module docstring)."""
  return f'{sequence}_matches'


def field_names(spec: fs.FeatureSpec, sequence_match: bool = False) -> List[str]:
  """The fields of :class:`FieldEmbedding`'s output, in order."""
  names = spec.feature_names
  if sequence_match:
    names = names + [match_name(q.name) for q in spec.sequence if q.target]
  return names


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class FieldEmbedding(keras.layers.Layer):
  """Maps ``{<feature>_xf: tensor}`` to [batch, num_fields, dim].

  Args:
    spec: the feature spec (its dict form is what ``get_config`` stores).
    cardinalities: ids per categorical and sequence feature, OOV (and padding) included
      (:func:`trainer.inputs.cardinalities`).
    dim: the common width.
    l2: L2 penalty on the embedding tables.
    adaptive: per-field widths from the vocabulary size, projected to ``dim``.
    sequence_encoder: ``mean`` or ``attention`` (target attention where the spec names a
      target; a masked mean otherwise).
    attention_heads: heads of the target attention.
    dropout: probability of dropping a whole field's vector while training.
    numeric_encoding: ``linear`` or ``periodic`` (see the module docstring).
    numeric_frequencies: learned frequencies per numeric field (``periodic``).
    numeric_sigma: standard deviation of their initial values (``periodic``).
    sequence_match: add a match-count field per sequence with a target.
  """

  def __init__(self, spec: Dict, cardinalities: Dict[str, int], dim: int = 16,
               l2: float = 0.0, adaptive: bool = False, sequence_encoder: str = 'mean',
               attention_heads: int = 2, dropout: float = 0.0,
               numeric_encoding: str = 'linear', numeric_frequencies: int = 16,
               numeric_sigma: float = 0.5, sequence_match: bool = False, **kwargs):
    super().__init__(**kwargs)
    if sequence_encoder not in SEQUENCE_ENCODERS:
      raise ValueError(f'sequence_encoder must be one of {SEQUENCE_ENCODERS}, got '
                       f'{sequence_encoder!r}')
    if numeric_encoding not in NUMERIC_ENCODINGS:
      raise ValueError(f'numeric_encoding must be one of {NUMERIC_ENCODINGS}, got '
                       f'{numeric_encoding!r}')
    if numeric_frequencies < 1 or numeric_sigma <= 0:
      raise ValueError('numeric_frequencies must be at least 1 and numeric_sigma positive, '
                       f'got {numeric_frequencies} and {numeric_sigma}')
    self.numeric_encoding = numeric_encoding
    self.numeric_frequencies = numeric_frequencies
    self.numeric_sigma = numeric_sigma
    self.sequence_match = sequence_match
    self.spec_dict = spec
    self.cardinalities = dict(cardinalities)
    self.dim = dim
    self.l2 = l2
    self.adaptive = adaptive
    self.sequence_encoder = sequence_encoder
    self.attention_heads = attention_heads
    self.dropout = dropout
    self._spec = fs.from_dict(spec)

  @property
  def field_names(self) -> List[str]:
    return field_names(self._spec, self.sequence_match)

  def field_width(self, name: str) -> int:
    """The table width of a categorical or sequence field."""
    f = self._spec.field(name)
    if isinstance(f, fs.SequenceFeature) and f.target:
      return self.field_width(f.target)
    if not self.adaptive:
      return self.dim
    return f.embedding_dim or fs.default_embedding_dim(self.cardinalities[name])

  def build(self, input_shape):
    reg = keras.regularizers.l2(self.l2) if self.l2 else None
    self.tables, self.projections, self.attention = {}, {}, {}
    for name, rows in table_sizes(self._spec, self.cardinalities).items():
      width = self.field_width(name)
      self.tables[name] = keras.layers.Embedding(rows, width, embeddings_regularizer=reg,
                                                 name=f'emb_{name}')
      if width != self.dim:
        self.projections[name] = keras.layers.Dense(self.dim, use_bias=False,
                                                    name=f'proj_{name}')
    for f in self._spec.sequence:
      if f.target and self.sequence_encoder == 'attention':
        self.attention[f.name] = TargetAttention(self.attention_heads, name=f'attn_{f.name}')
    self.match_tables = {}
    # (sequence, its target) pairs, resolved here: AutoGraph mis-converts the spec's
    # lookup methods when call() runs them (measured: a TypeError in model.fit).
    self._match_pairs = []
    if self.sequence_match:
      for f in self._spec.sequence:
        if f.target:
          self.match_tables[f.name] = keras.layers.Embedding(
              f.max_len + 1, self.dim, embeddings_regularizer=reg, name=f'match_{f.name}')
          self._match_pairs.append((f, self._spec.field(f.target)))
    self.pool = MaskedMeanPooling()
    n_numeric = len(self._spec.numeric)
    if n_numeric:
      self.numeric_direction = self.add_weight(
          'numeric_direction', shape=(n_numeric, self.dim),
          initializer=keras.initializers.RandomNormal(stddev=0.05), regularizer=reg)
      self.numeric_offset = self.add_weight('numeric_offset', shape=(n_numeric, self.dim),
                                            initializer='zeros')
      if self.numeric_encoding == 'periodic':
        k = self.numeric_frequencies
        self.numeric_frequency = self.add_weight(
            'numeric_frequency', shape=(n_numeric, k),
            initializer=keras.initializers.RandomNormal(stddev=self.numeric_sigma))
        self.numeric_periodic = self.add_weight(
            'numeric_periodic', shape=(n_numeric, 2 * k, self.dim),
            initializer=keras.initializers.GlorotUniform(), regularizer=reg)
        self.numeric_periodic_bias = self.add_weight(
            'numeric_periodic_bias', shape=(n_numeric, self.dim), initializer='zeros')
    self.field_dropout = keras.layers.Dropout(self.dropout, noise_shape=(None, None, 1))
    super().build(input_shape)

  def _lookup(self, table: str, ids):
    vectors = self.tables[table](ids)
    if table in self.projections:
      vectors = self.projections[table](vectors)
    return vectors

  def _matches(self, sequence: fs.SequenceFeature, target: fs.Categorical,
               inputs) -> tf.Tensor:
    """[b] int: tokens of ``sequence`` equal to its ``target``'s value (padding never
    is)."""
    candidate = inputs[transformed_name(target.name)]
    tokens = inputs[transformed_name(sequence.name)]
    count = tf.reduce_sum(tf.cast(tf.equal(tokens, candidate[:, None] + 1), tf.int32), axis=1)
    if not target.hash_buckets and target.oov_buckets:
      in_vocabulary = candidate < self.cardinalities[target.name] - target.oov_buckets
      count = tf.where(in_vocabulary, count, tf.zeros_like(count))
    return count

  def call(self, inputs, training=None):
    targets = self._spec.targets()
    fields, candidate = [], {}
    for f in self._spec.categorical:
      ids = inputs[transformed_name(f.name)]
      vec = self._lookup(f.name, ids + 1 if f.name in targets else ids)
      candidate[f.name] = vec
      fields.append(vec)
    if self._spec.numeric:
      x = tf.stack([tf.cast(inputs[transformed_name(f.name)], self.compute_dtype)
                    for f in self._spec.numeric], axis=1)                # [b, n]
      numeric = x[:, :, None] * self.numeric_direction[None] + self.numeric_offset[None]
      if self.numeric_encoding == 'periodic':
        angle = 2 * np.pi * x[:, :, None] * self.numeric_frequency[None]   # [b, n, k]
        waves = tf.concat([tf.sin(angle), tf.cos(angle)], axis=-1)        # [b, n, 2k]
        numeric += tf.nn.relu(tf.einsum('bnk,nkd->bnd', waves, self.numeric_periodic)
                              + self.numeric_periodic_bias[None])
      fields.extend(tf.unstack(numeric, axis=1))
    for f in self._spec.sequence:
      ids = inputs[transformed_name(f.name)]
      tokens = self._lookup(f.target or f.name, ids)                    # [b, L, dim]
      if f.name in self.attention:
        fields.append(self.attention[f.name](tokens, ids > 0, candidate[f.target],
                                             training=training))
      else:
        fields.append(self.pool(tokens, mask=ids > 0))
    for sequence, target in self._match_pairs:
      fields.append(self.match_tables[sequence.name](self._matches(sequence, target, inputs)))
    return self.field_dropout(tf.stack(fields, axis=1), training=training)

  def get_config(self):
    config = super().get_config()
    config.update(spec=self.spec_dict, cardinalities=self.cardinalities, dim=self.dim,
                  l2=self.l2, adaptive=self.adaptive, sequence_encoder=self.sequence_encoder,
                  attention_heads=self.attention_heads, dropout=self.dropout,
                  numeric_encoding=self.numeric_encoding,
                  numeric_frequencies=self.numeric_frequencies,
                  numeric_sigma=self.numeric_sigma, sequence_match=self.sequence_match)
    return config
