"""DNN: the plain deep baseline. Field embeddings, flattened, through an MLP.

    rep = MLP(concat(e_1, ..., e_F))

With adaptive embeddings (the default) each categorical field gets a width from its
vocabulary size (``6 * cardinality^0.25``, in [4, 64], or the spec's ``embedding_dim``),
projected to the common ``embedding_dim``.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import tf_keras as keras

from trainer.models.blocks import Body, EmbeddingConfig, embed_fields, field_count, mlp
from trainer.models.counting import (embedding_parameter_count,
                                     mlp_parameter_count)
from transform import feature_spec as fs


@dataclasses.dataclass
class DnnConfig(EmbeddingConfig):
  adaptive_embeddings: bool = True
  hidden_units: Sequence[int] = (256, 128, 64)
  dropout: float = 0.1
  l2: float = 0.0


def body(inputs, spec: fs.FeatureSpec, cards: Dict[str, int], config: DnnConfig,
         num_heads: int) -> Body:
  fields = embed_fields(inputs, spec, cards, config)
  flat = keras.layers.Flatten(name='flat_fields')(fields)
  return Body(mlp(flat, config.hidden_units, config.dropout, 'mlp', config.l2))


def parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int], config: DnnConfig) -> int:
  """Parameters with a single task's head (a test checks it against Keras)."""
  n_fields = field_count(spec, config)
  deep, width = mlp_parameter_count(n_fields * config.embedding_dim, config.hidden_units)
  return embedding_parameter_count(spec, cards, config) + deep + width + 1
