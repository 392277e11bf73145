"""The Transform component's ``preprocessing_fn``, derived from the feature spec.

For every feature of the spec (:mod:`transform.feature_spec`) it writes one transformed
feature named ``<name>_xf`` (:func:`transformed_name`):

* numeric: the value (missing cells take the spec's ``default``), optionally
  ``log1p(max(x, 0))``, then the z-score (:func:`z_score`: ``tft.mean`` and ``tft.var``
  in float64, rounded so that they repeat); float32, shape [batch].
* categorical: the value as a string, then ``tft.compute_and_apply_vocabulary`` with the
  spec's frequency threshold, top-k and OOV buckets, or ``tf.strings.to_hash_bucket_fast``
  when ``hash_buckets`` is set; int64 ids, shape [batch].
* sequence: the cell split on its separator, empty tokens dropped, truncated to
  ``max_len``, mapped through a vocabulary and padded; int64, shape [batch, max_len],
  where 0 is padding and id + 1 is a token (so it feeds ``Embedding(mask_zero=True)``).
  A sequence with a ``target`` field maps its tokens through that field's vocabulary (or
  hashing) instead of its own, so token id + 1 and the target's id name the same value.
* labels: ``<label>_xf`` as int64 0/1 (``column >= threshold`` where the spec sets one).

The spec reaches the function as Transform's ``custom_config['feature_spec']`` (a dict),
so that the Transform executor needs no file of ours at run time.
"""

from __future__ import annotations



from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft

from transform import feature_spec as fs


def transformed_name(name: str) -> str:
  return f'{name}_xf'


def vocabulary_name(name: str) -> str:
  return f'vocab_{name}'


def _to_dense(x, default) -> tf.Tensor:
  """A rank-1 [batch] tensor from a raw feature, filling missing cells with ``default``.

  SchemaGen gives always-present scalar columns a fixed shape [1] (dense) and others a
  variable length (sparse or ragged), so every raw feature may arrive in any form.
  """
  if isinstance(x, tf.RaggedTensor):
    x = x.to_sparse()
  if isinstance(x, tf.SparseTensor):
    x = tf.sparse.to_dense(
        tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default_value=default)
  else:
    x = tf.reshape(x, [-1, 1]) if x.shape.rank == 1 else x[:, :1]
  return tf.squeeze(x, axis=1)


def _as_string(x: tf.Tensor) -> tf.Tensor:
  return x if x.dtype == tf.string else tf.strings.as_string(x)


def _categorical(x, f: fs.Categorical):
  """Ids of a categorical column, and the function that maps any tokens to the same ids
  (a sequence whose ``target`` is this field shares it)."""
  value = _as_string(_to_dense(x, '' if x.dtype == tf.string else tf.cast(-1, x.dtype)))
  if f.hash_buckets:
    lookup = lambda t: tf.strings.to_hash_bucket_fast(t, f.hash_buckets)  # noqa: E731
  else:
    vocab = tft.vocabulary(value, top_k=f.vocab_size, frequency_threshold=f.min_frequency,
                           vocab_filename=vocabulary_name(f.name))
    lookup = lambda t: tft.apply_vocabulary(t, vocab, num_oov_buckets=f.oov_buckets)  # noqa: E731
  return lookup(value), lookup


# Significant digits the z-score's mean and variance keep (more than float32 holds).
STAT_DIGITS = 9


def round_significant(x: tf.Tensor, digits: int = STAT_DIGITS) -> tf.Tensor:
  """``x`` rounded to ``digits`` significant digits (0 stays 0)."""
  safe = tf.where(tf.equal(x, 0), tf.ones_like(x), tf.abs(x))
  exponent = tf.floor(tf.math.log(safe) / tf.math.log(tf.constant(10.0, x.dtype)))
  scale = tf.pow(tf.constant(10.0, x.dtype), digits - 1 - exponent)
  return tf.where(tf.equal(x, 0), x, tf.round(x * scale) / scale)


def z_score(value: tf.Tensor) -> tf.Tensor:
  """``tft.scale_to_z_score``, with the statistics in float64 rounded to
  :data:`STAT_DIGITS` digits.

  Why not ``tft.scale_to_z_score`` itself: Beam merges the partial sums of the analyzers
  in an order of its own, so one set of rows gives float32 statistics that differ in their
  last bit from run to run (measured: 1e-7 on most rows of the default data), and the
  Trainer then starts from other inputs. In float64 the sums differ by about 1e-15;
  rounded to 9 digits they are equal unless the two land on either side of a rounding
  step (estimated: about once in 10^5 statistics; two runs on the default data agreed).
  A constant feature (variance 0) is only centred, as ``tft.scale_to_z_score`` does.
  """
  x = tf.cast(value, tf.float64)
  mean = round_significant(tft.mean(x, output_dtype=tf.float64))
  var = round_significant(tft.var(x, output_dtype=tf.float64))
  std = tf.where(var > 0, tf.sqrt(var), tf.ones_like(var))
  return tf.cast((x - mean) / std, tf.float32)


def _numeric(x, f: fs.Numeric) -> tf.Tensor:
  # In float64 throughout. Measured with the statistics already fixed: in float32, 528
  # of 159,923 training rows of the default data still came out a few ulps apart between
  # two runs, from the same input bytes (not pinned down further; Beam's bundles are the
  # likely cause, as they cut the batches). In float64 such differences stay
  # below what the final cast to float32 keeps: two runs wrote identical bytes.
  value = tf.cast(_to_dense(x, tf.cast(f.default, x.dtype)), tf.float64)
  if f.log:
    value = tf.math.log1p(tf.maximum(value, 0.0))
  return z_score(value)


def _sequence(x, f: fs.SequenceFeature, lookup=None) -> tf.Tensor:
  """``lookup``: the target field's token -> id function (its vocabulary or hashing)."""
  cells = _as_string(_to_dense(x, '' if x.dtype == tf.string else tf.cast(-1, x.dtype)))
  tokens = tf.strings.split(cells, sep=f.separator)
  tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ''))[:, :f.max_len]
  if lookup is not None:
    ids = tf.SparseTensor.from_value(tokens.to_sparse())
    ids = tf.SparseTensor(ids.indices, lookup(ids.values), ids.dense_shape)
  else:
    ids = tft.compute_and_apply_vocabulary(
        tokens.to_sparse(), top_k=f.vocab_size, frequency_threshold=f.min_frequency,
        num_oov_buckets=f.oov_buckets, vocab_filename=vocabulary_name(f.name))
  dense = tf.sparse.to_dense(ids, default_value=-1)
  dense = tf.pad(dense, [[0, 0], [0, f.max_len - tf.shape(dense)[1]]], constant_values=-1)
  return tf.reshape(dense + 1, [-1, f.max_len])


def _label(x, label: fs.Label) -> tf.Tensor:
  value = _to_dense(x, tf.cast(0, x.dtype))
  if label.threshold is not None:
    return tf.cast(tf.cast(value, tf.float32) >= label.threshold, tf.int64)
  if value.dtype == tf.string:
    value = tf.strings.to_number(value, tf.float32)
  return tf.cast(tf.cast(value, tf.float32) > 0.5, tf.int64)


def transform_spec(spec: fs.FeatureSpec, inputs: Dict[str, Any]) -> Dict[str, tf.Tensor]:
  """The transformed features of ``inputs`` under ``spec``."""
  outputs, lookups = {}, {}
  for f in spec.categorical:
    outputs[transformed_name(f.name)], lookups[f.name] = _categorical(inputs[f.name], f)
  for f in spec.numeric:
    outputs[transformed_name(f.name)] = _numeric(inputs[f.name], f)
  for f in spec.sequence:
    outputs[transformed_name(f.name)] = _sequence(inputs[f.name], f, lookups.get(f.target))
  for label in spec.labels:
    if label.column in inputs:  # absent at serving time
      outputs[transformed_name(label.name)] = _label(inputs[label.column], label)
  return outputs


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Dict[str, Any]):
  """tf.Transform entry point (Transform's ``preprocessing_fn``)."""
  if not custom_config or fs.SPEC_KEY not in custom_config:
    raise ValueError(f'Transform needs custom_config["{fs.SPEC_KEY}"], the feature spec '
                     'as a dict (pipeline.pipeline.create_pipeline passes it)')
  return transform_spec(fs.from_dict(custom_config[fs.SPEC_KEY]), inputs)
