"""DCN-v2 (Wang et al., 2021): low-rank cross layers beside (or under) a deep network.

    x_0 = concat(e_1, ..., e_F)
    x_{l+1} = x_0 * (U_l (V_l^T x_l) + b_l) + x_l        tfrs.layers.dcn.Cross(projection_dim=r)
    parallel: rep = concat(x_L, MLP(x_0));  stacked: rep = MLP(x_L)

The cross layer is TensorFlow Recommenders' own; ``projection_dim`` sets its rank
(null gives the full-rank matrix of DCN-v2's first form).
"""

from __future__ import annotations

import dataclasses

from typing import Dict, Optional, Sequence

import tensorflow_recommenders as tfrs
import tf_keras as keras

from trainer.models.blocks import (Body, EmbeddingConfig, embed_fields,
                                   field_count, mlp)
from trainer.models.counting import (embedding_parameter_count,
                                     mlp_parameter_count)
from transform import feature_spec as fs


@dataclasses.dataclass
class DcnV2Config(EmbeddingConfig):
  cross_layers: int = 3
  projection_dim: Optional[int] = 32
  structure: str = 'parallel'            # parallel | stacked
  hidden_units: Sequence[int] = (256, 128)
  dropout: float = 0.1

  def __post_init__(self):
    if self.structure not in ('parallel', 'stacked'):
      raise ValueError(f'structure must be parallel or stacked, got {self.structure!r}')


def body(inputs, spec: fs.FeatureSpec, cards: Dict[str, int], config: DcnV2Config,
         num_heads: int) -> Body:
  fields = embed_fields(inputs, spec, cards, config)
  x0 = keras.layers.Flatten(name='flat_fields')(fields)
  x = x0
  for i in range(config.cross_layers):
    x = tfrs.layers.dcn.Cross(projection_dim=config.projection_dim,
                              kernel_initializer='glorot_uniform', name=f'cross_{i}')(x0, x)
  if config.structure == 'stacked':
    return Body(mlp(x, config.hidden_units, config.dropout, 'deep'))
  deep = mlp(x0, config.hidden_units, config.dropout, 'deep')
  return Body(keras.layers.Concatenate(name='cross_and_deep')([x, deep]))


def parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int], config: DcnV2Config) -> int:
  """Parameters with a single task's head (a test checks it against Keras)."""
  w = field_count(spec, config) * config.embedding_dim
  r = config.projection_dim
  cross = config.cross_layers * ((w * r + r * w + w) if r else (w * w + w))
  if config.structure == 'stacked':
    deep, out = mlp_parameter_count(w, config.hidden_units)
  else:
    deep, out = mlp_parameter_count(w, config.hidden_units)
    out += w
  return embedding_parameter_count(spec, cards, config) + cross + deep + out + 1
