"""MultiTaskTransformer, the seed's default model.

    e_i  = FieldEmbedding(adaptive)      per-field width from vocabulary size, projected to d
    seq  = TargetAttention(seq, candidate)    the behaviour sequence read against the ad
    h    = FieldTransformer(e)           L pre-LN Transformer blocks over the fields
                                         (then a LayerNorm per field: ``final_norm``)
    rep  = MLP(flatten(h))               the shared MLP
           MLP(concat(flatten(e), flatten(h)))   with ``embedding_skip``
    task logits: the task heads of :func:`trainer.models.heads.build_core` (per-task towers
    over a shared-bottom, MMoE or PLE backbone; ESMM for click + conversion).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import tf_keras as keras

from trainer.layers.transformer import FieldTransformer
from trainer.models.blocks import Body, EmbeddingConfig, embed_fields, field_count, mlp
from trainer.models.counting import (attention_parameter_count, embedding_parameter_count,
                                     mlp_parameter_count)
from transform import feature_spec as fs


@dataclasses.dataclass
class MttConfig(EmbeddingConfig):
  embedding_dim: int = 32
  adaptive_embeddings: bool = True
  transformer_layers: int = 2
  num_heads: int = 4
  ff_multiplier: int = 2
  hidden_units: Sequence[int] = (256, 128)
  dropout: float = 0.1
  # FieldTransformer's LayerNorm per field after the last block (pre-LN encoders have
  # one). It rescales each field to unit size, so the MLP no longer sees the L2 prior's
  # shrinkage of rare ids (docs/BENCHMARKS.md, "RE-SORT and the MultiTaskTransformer").
  final_norm: bool = True
  # The MLP also reads the field embeddings as they are, beside the Transformer's output.
  embedding_skip: bool = False


def body(inputs, spec: fs.FeatureSpec, cards: Dict[str, int], config: MttConfig,
         num_heads: int) -> Body:
  fields = embed_fields(inputs, spec, cards, config)
  h = FieldTransformer(config.transformer_layers, config.num_heads, config.ff_multiplier,
                       config.dropout, final_norm=config.final_norm,
                       name='field_transformer')(fields)
  flat = keras.layers.Flatten(name='transformer_out')(h)
  if config.embedding_skip:
    flat = keras.layers.Concatenate(name='mlp_in')(
        [keras.layers.Flatten(name='flat_fields')(fields), flat])
  return Body(mlp(flat, config.hidden_units, config.dropout, 'shared_mlp'))


def parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int], config: MttConfig) -> int:
  """Parameters with a single task's head (a test checks it against Keras)."""
  n_fields, d, m = field_count(spec, config), config.embedding_dim, config.ff_multiplier
  block = (attention_parameter_count(d, config.num_heads, d // config.num_heads, d)
           + 4 * d + (d * m * d + m * d) + (m * d * d + d))
  transformer = (n_fields * d + config.transformer_layers * block
                 + (2 * d if config.final_norm else 0))
  mlp_in = n_fields * d * (2 if config.embedding_skip else 1)
  deep, width = mlp_parameter_count(mlp_in, config.hidden_units)
  return embedding_parameter_count(spec, cards, config) + transformer + deep + width + 1
