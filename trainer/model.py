"""The baseline Keras model: field embeddings + an MLP, one sigmoid output.

Built from the feature spec and the Transform output only, so the same code serves any
dataset: one embedding per categorical field (width from the spec or derived from the
cardinality), a masked mean of the sequence's token embeddings, the z-scored numeric
features, concatenated and fed to an MLP.
"""

from __future__ import annotations

import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import dataclasses  # noqa: E402
from typing import Dict, Sequence  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from trainer.layers.embedding import MaskedMeanPooling  # noqa: E402
from transform import feature_spec as fs  # noqa: E402
from transform.preprocessing import transformed_name, vocabulary_name  # noqa: E402


@dataclasses.dataclass
class ModelConfig:
  hidden_units: Sequence[int] = (256, 128, 64)
  dropout: float = 0.1
  learning_rate: float = 1e-3
  l2: float = 1e-6


def cardinalities(spec: fs.FeatureSpec, tf_transform_output) -> Dict[str, int]:
  """Number of ids of each categorical and sequence feature, OOV included.

  Sequence ids are shifted by one (0 is padding), hence the + 1.
  """
  out = {}
  for f in spec.categorical:
    out[f.name] = f.hash_buckets or (
        tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name)) + f.oov_buckets)
  for f in spec.sequence:
    out[f.name] = (tf_transform_output.vocabulary_size_by_name(vocabulary_name(f.name))
                   + f.oov_buckets + 1)
  return out


def build_inputs(spec: fs.FeatureSpec) -> Dict[str, keras.Input]:
  inputs = {}
  for f in spec.categorical:
    name = transformed_name(f.name)
    inputs[name] = keras.Input(shape=(), name=name, dtype=tf.int64)
  for f in spec.numeric:
    name = transformed_name(f.name)
    inputs[name] = keras.Input(shape=(), name=name, dtype=tf.float32)
  for f in spec.sequence:
    name = transformed_name(f.name)
    inputs[name] = keras.Input(shape=(f.max_len,), name=name, dtype=tf.int64)
  return inputs


def build_model(spec: fs.FeatureSpec, cards: Dict[str, int],
                config: ModelConfig = ModelConfig()) -> keras.Model:
  """Embedding + MLP model over ``spec``'s transformed features.

  Args:
    spec: the feature spec.
    cards: ids per categorical / sequence feature (:func:`cardinalities`).
    config: widths, dropout and optimiser settings.
  Returns:
    A compiled model mapping ``{<feature>_xf: tensor}`` to the primary label's
    probability, shape [batch, 1].
  """
  reg = keras.regularizers.l2(config.l2) if config.l2 else None
  inputs = build_inputs(spec)
  parts = []
  for f in spec.categorical:
    dim = f.embedding_dim or fs.default_embedding_dim(cards[f.name])
    emb = keras.layers.Embedding(cards[f.name], dim, embeddings_regularizer=reg,
                                 name=f'emb_{f.name}')
    parts.append(emb(inputs[transformed_name(f.name)]))
  for f in spec.sequence:
    dim = f.embedding_dim or fs.default_embedding_dim(cards[f.name])
    emb = keras.layers.Embedding(cards[f.name], dim, mask_zero=True,
                                 embeddings_regularizer=reg, name=f'emb_{f.name}')
    parts.append(MaskedMeanPooling(name=f'pool_{f.name}')(
        emb(inputs[transformed_name(f.name)])))
  if spec.numeric:
    dense = keras.layers.Lambda(lambda xs: tf.stack(xs, axis=1), name='numeric')(
        [inputs[transformed_name(f.name)] for f in spec.numeric])
    parts.append(dense)
  x = keras.layers.Concatenate(name='fields')(parts) if len(parts) > 1 else parts[0]
  for i, units in enumerate(config.hidden_units):
    x = keras.layers.Dense(units, activation='relu', kernel_regularizer=reg,
                           name=f'mlp_{i}')(x)
    if config.dropout:
      x = keras.layers.Dropout(config.dropout, name=f'dropout_{i}')(x)
  output = keras.layers.Dense(1, activation='sigmoid', name=spec.primary_label.name)(x)
  model = keras.Model(inputs=inputs, outputs=output, name='embedding_mlp')
  model.compile(
      optimizer=keras.optimizers.Adam(config.learning_rate),
      loss=keras.losses.BinaryCrossentropy(),
      metrics=[keras.metrics.AUC(name='auc'), keras.metrics.BinaryCrossentropy(name='logloss')])
  return model
