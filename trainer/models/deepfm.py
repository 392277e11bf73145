"""DeepFM (Guo et al., 2017): a factorization machine and a DNN on shared embeddings.

    logit = w_0 + sum_i w_i(x_i)  +  sum_{i<j} <e_i, e_j>  +  Dense(MLP(concat(e)))
            first order             FM pairwise term         deep part (the head)

The first-order weights ``w_i`` are a width-1 field embedding (a scalar per id, and
``x * v + u`` for numeric fields); the pairwise term is
:class:`trainer.layers.interaction.FactorizationMachine` over the shared embeddings.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import tf_keras as keras

from trainer.layers.embedding import FieldEmbedding
from trainer.layers.interaction import FactorizationMachine
from trainer.models.blocks import Body, EmbeddingConfig, embed_fields, field_count, mlp
from trainer.models.counting import (embedding_parameter_count,
                                     mlp_parameter_count)
from transform import feature_spec as fs


@dataclasses.dataclass
class DeepFmConfig(EmbeddingConfig):
  hidden_units: Sequence[int] = (256, 128)
  dropout: float = 0.1


def body(inputs, spec: fs.FeatureSpec, cards: Dict[str, int], config: DeepFmConfig,
         num_heads: int) -> Body:
  fields = embed_fields(inputs, spec, cards, config)
  first = FieldEmbedding(spec.to_dict(), cards, 1, config.embedding_l2,
                         sequence_encoder='mean', sequence_match=config.sequence_match,
                         name='first_order')(inputs)   # [b, F, 1]
  first = keras.layers.Flatten(name='first_order_flat')(first)
  first = keras.layers.Dense(1, kernel_initializer='ones', name='first_order_sum')(first)
  fm = keras.layers.Add(name='fm_logit')([first, FactorizationMachine(name='fm')(fields)])
  flat = keras.layers.Flatten(name='flat_fields')(fields)
  return Body(mlp(flat, config.hidden_units, config.dropout, 'deep'), fm)


def parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int], config: DeepFmConfig) -> int:
  """Parameters with a single task's head (a test checks it against Keras)."""
  n_fields = field_count(spec, config)
  first = embedding_parameter_count(spec, cards, EmbeddingConfig(
      embedding_dim=1, sequence_encoder='mean', sequence_match=config.sequence_match,
      wide=False)) + n_fields + 1
  deep, width = mlp_parameter_count(n_fields * config.embedding_dim, config.hidden_units)
  return embedding_parameter_count(spec, cards, config) + first + deep + width + 1
