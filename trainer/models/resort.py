"""RE-SORT (Wu et al., 2024, arXiv 2309.14891) on the feature spec's fields.

    E = FieldEmbedding(spec)                     [batch, F, d]   fields are the sequence axis
    view_1, view_2 = FeatureSelection(flat E)    two gated views, gates 2 sigmoid(MLP(ctx))
    deep    = MSR^L(Dense_r(view_1))             L = msr_layers retention blocks, width r
    shallow = MSR^1(Dense_r(view_2))             one block: the streams differ in depth
    logit   = InteractionAggregation(flat deep, flat shallow)   multi-head bilinear
            + Dense(MLP(flat E))                 with ``mlp_units``: an MLP beside it

Unlike the public PyTorch code, which applies XPOS to a flat 2-D tensor and one decay
per layer, the retention here runs over the field axis with one decay per head
(:mod:`trainer.layers.retention`). Seed defaults: 2 MSR layers, MSR width 32, 2 heads,
embedding width 16, dropout 0.1, gate hidden units [64]. ``mlp_units`` (default none, the
paper's model) adds an MLP over the field embeddings whose logit joins the aggregation's,
as the deep part of a wide-and-deep model joins its wide part.
"""

from __future__ import annotations

import dataclasses

from typing import Dict, Sequence

import tf_keras as keras

from trainer.layers.feature_selection import (FeatureSelection,
                                              InteractionAggregation)
from trainer.layers.retention import MultiScaleRetention
from trainer.models.blocks import (Body, EmbeddingConfig, embed_fields,
                                   field_count, mlp)
from trainer.models.counting import (embedding_parameter_count,
                                     mlp_parameter_count)
from transform import feature_spec as fs


@dataclasses.dataclass
class ReSortConfig(EmbeddingConfig):
  msr_layers: int = 2            # depth of the deep stream (the shallow one has 1)
  msr_dim: int = 32
  num_heads: int = 2
  fs_hidden_units: Sequence[int] = (64,)
  aggregation_heads: int = 2
  dropout: float = 0.1
  mlp_units: Sequence[int] = ()  # an MLP over the embeddings beside the aggregation
  bilinear: bool = True          # False: the aggregation's linear terms alone (ablation)


def body(inputs, spec: fs.FeatureSpec, cards: Dict[str, int], config: ReSortConfig,
         num_heads: int) -> Body:
  """Single task: the aggregation logit alone (the paper's model), plus the MLP's logit
  with ``mlp_units``. Several tasks: the flattened streams (and the MLP's output) also
  feed the multi-task heads."""
  fields = embed_fields(inputs, spec, cards, config)                    # [b, F, d]
  n_fields = field_count(spec, config)
  flat = keras.layers.Flatten(name='flat_fields')(fields)
  view1, view2 = FeatureSelection(config.fs_hidden_units, config.dropout,
                                  name='feature_selection')(flat)
  streams = []
  for name, view, depth in (('deep', view1, config.msr_layers), ('shallow', view2, 1)):
    h = keras.layers.Reshape((n_fields, config.embedding_dim), name=f'{name}_fields')(view)
    h = keras.layers.Dense(config.msr_dim, name=f'{name}_proj')(h)
    for i in range(depth):
      h = MultiScaleRetention(config.num_heads, dropout=config.dropout,
                              name=f'{name}_msr_{i}')(h)
    streams.append(keras.layers.Flatten(name=f'{name}_out')(h))
  logit = InteractionAggregation(config.aggregation_heads, config.bilinear,
                                 name='aggregation')(streams)
  deep_mlp = (mlp(flat, config.mlp_units, config.dropout, 'mlp') if config.mlp_units
              else None)
  if num_heads == 1:
    return Body(deep_mlp, logit)
  reps = streams + ([deep_mlp] if deep_mlp is not None else [])
  return Body(keras.layers.Concatenate(name='streams')(reps), logit)


def parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int],
                    config: ReSortConfig = ReSortConfig()) -> int:
  """RE-SORT's parameters with a single task (a test checks it against Keras)."""
  n_fields = field_count(spec, config)
  d, r = config.embedding_dim, config.msr_dim
  width = n_fields * d
  gate = 0
  prev = width
  for units in config.fs_hidden_units:
    gate += prev * units + units
    prev = units
  gate += prev * width + width
  msr = 5 * r * r + 4 * r
  aggregation = (n_fields * r + 1) + n_fields * r + (config.aggregation_heads * (
      n_fields * r // config.aggregation_heads) ** 2 if config.bilinear else 0)
  deep_mlp, mlp_width = mlp_parameter_count(width, config.mlp_units)
  head = deep_mlp + mlp_width + 1 if config.mlp_units else 0
  return (embedding_parameter_count(spec, cards, config)
          + 2 * (gate + width)                     # two gates and their learned contexts
          + 2 * (d * r + r)                        # stream projections
          + (config.msr_layers + 1) * msr          # deep + shallow retention blocks
          + aggregation + head)



