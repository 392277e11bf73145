"""Parameter counts of the shared blocks, worked out from the configs without building
a model; each architecture's ``parameter_count`` adds its own parts (tests check every
count against Keras').
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

from trainer.layers.embedding import table_sizes
from trainer.models.blocks import EmbeddingConfig
from transform import feature_spec as fs


def mlp_parameter_count(width: int, units: Sequence[int]) -> Tuple[int, int]:
  """(parameters, output width) of :func:`mlp` on an input of ``width``."""
  total = 0
  for u in units:
    total += width * u + u
    width = u
  return total, width


def attention_parameter_count(d_in: int, heads: int, key_dim: int, d_out: int) -> int:
  """Keras ``MultiHeadAttention`` with biases: query/key/value and output projections."""
  inner = heads * key_dim
  return 3 * (d_in * inner + inner) + inner * d_out + d_out


def embedding_parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int],
                              config: EmbeddingConfig) -> int:
  """Parameters of :func:`embed_fields` (a test checks it against Keras)."""
  d = config.embedding_dim
  total = 2 * len(spec.numeric) * d
  if config.numeric_encoding == 'periodic':
    k = config.numeric_frequencies
    total += len(spec.numeric) * (k + 2 * k * d + d)
  for name, rows in table_sizes(spec, cards).items():
    f = spec.field(name)
    width = (f.embedding_dim or fs.default_embedding_dim(cards[name])
             if config.adaptive_embeddings else d)
    total += rows * width + (width * d if width != d else 0)
  if config.sequence_match:
    total += sum((q.max_len + 1) * d for q in spec.sequence if q.target)
  if config.wide:
    from trainer.layers import wide
    total += wide.parameter_count(spec, cards, config.wide_max_cells)
  for q in spec.sequence:
    if q.target and config.sequence_encoder == 'attention':   # TargetAttention, m = 2
      total += ((q.max_len + 1) * d + attention_parameter_count(d, config.attention_heads,
                                                                d // config.attention_heads, d)
                + 4 * d + (d * 2 * d + 2 * d) + (2 * d * d + d))
  return total
