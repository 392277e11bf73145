"""AutoInt+ (Song et al., 2019): stacked self-attention across fields, plus a DNN.

    h_0 = [e_1, ..., e_F]                      [batch, F, d]
    h_l = ReLU(MHA(h_{l-1}) + h_{l-1} W_res)   SelfAttentionInteraction, l = 1..L
    rep = concat(flatten(h_L), MLP(flatten(h_0)))      the "+": AutoInt with a DNN beside it
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import tf_keras as keras

from trainer.layers.interaction import SelfAttentionInteraction
from trainer.models.blocks import Body, EmbeddingConfig, embed_fields, field_count, mlp
from trainer.models.counting import (attention_parameter_count, embedding_parameter_count,
                                     mlp_parameter_count)
from transform import feature_spec as fs


@dataclasses.dataclass
class AutoIntConfig(EmbeddingConfig):
  attention_layers: int = 3
  num_heads: int = 2
  head_dim: int = 16
  hidden_units: Sequence[int] = (256, 128)
  dropout: float = 0.1


def body(inputs, spec: fs.FeatureSpec, cards: Dict[str, int], config: AutoIntConfig,
         num_heads: int) -> Body:
  fields = embed_fields(inputs, spec, cards, config)
  h = fields
  for i in range(config.attention_layers):
    h = SelfAttentionInteraction(config.num_heads, config.head_dim, config.dropout,
                                 name=f'interacting_{i}')(h)
  attention = keras.layers.Flatten(name='attention_out')(h)
  deep = mlp(keras.layers.Flatten(name='flat_fields')(fields), config.hidden_units,
             config.dropout, 'deep')
  return Body(keras.layers.Concatenate(name='attention_and_deep')([attention, deep]))


def parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int], config: AutoIntConfig) -> int:
  """Parameters with a single task's head (a test checks it against Keras)."""
  n_fields, d = field_count(spec, config), config.embedding_dim
  width = config.num_heads * config.head_dim
  attention, d_in = 0, d
  for _ in range(config.attention_layers):
    attention += attention_parameter_count(d_in, config.num_heads, config.head_dim, width)
    attention += d_in * width                                   # residual projection
    d_in = width
  deep, out = mlp_parameter_count(n_fields * d, config.hidden_units)
  return (embedding_parameter_count(spec, cards, config) + attention + deep
          + n_fields * width + out + 1)
