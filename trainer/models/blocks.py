"""The building blocks every architecture shares: what a body returns (:class:`Body`),
the field embeddings and their settings (:class:`EmbeddingConfig`, :func:`embed_fields`),
the wide part (:func:`add_wide`) and its sizing to the training rows, and the MLP.
"""

from __future__ import annotations

import dataclasses

from typing import Dict, Optional, Sequence

import tensorflow as tf
import tf_keras as keras

from trainer.layers.embedding import FieldEmbedding, field_names
from transform import feature_spec as fs


@dataclasses.dataclass
class Body:
  """What an architecture gives the task heads: a representation ``rep`` [batch, k]
  and, optionally, a ``logit`` [batch, 1] that it computes itself."""
  rep: Optional[tf.Tensor]
  logit: Optional[tf.Tensor] = None


@dataclasses.dataclass
class EmbeddingConfig:
  """Embedding settings every architecture shares (fields of each model's config)."""
  embedding_dim: int = 16
  embedding_l2: float = 1e-4              # L2 on every table (MAP shrinkage of rare ids)
  embedding_dropout: float = 0.0          # drops whole fields while training
  adaptive_embeddings: bool = False       # per-field widths from vocabulary size
  sequence_encoder: str = 'attention'     # attention (where the spec names a target) | mean
  attention_heads: int = 2
  numeric_encoding: str = 'linear'        # linear | periodic (FieldEmbedding)
  numeric_frequencies: int = 16
  numeric_sigma: float = 0.5
  sequence_match: bool = True             # a match-count field per targeted sequence
  wide: bool = True                       # add trainer.layers.wide.WideCrossLogit
  wide_max_cells: int = 20_000            # largest crossed column of the wide part
  # With the training rows and label rate known (the Trainer), a crossed column is kept
  # only if its cells average this much Fisher information, rows * p * (1 - p) / cells
  # (about this many clicks per cell at a low CTR). None: wide_max_cells alone.
  wide_cell_information: Optional[float] = 2.0
  wide_l2: float = 1e-4
  wide_cross_l2: Optional[float] = None   # the crossed columns' L2 (None: wide_l2)
  # How the wide part is fitted (trainer.wide_fit; on at most wide_fit_rows training
  # rows, one prior variance per table by empirical Bayes): 'joint': it trains with the
  # deep part, by the same optimiser and budget, and that is all; 'backfit' (default):
  # after that, its logistic regression is solved again with the rest of the model's
  # logit as a fixed offset, kept where the eval logloss falls
  # (trainer.task.backfit_wide); 'first': solved before the deep part trains, then held
  # fixed (docs/MODELS.md).
  wide_fit: str = 'backfit'
  wide_fit_rows: int = 2_000_000
  # A number: embedding_l2 and wide_l2 are the penalties at this many training rows, and
  # the Trainer scales them by l2_reference_rows / rows (scaled_to_rows). None (default):
  # as given; measured neutral at 800k rows (docs/MODELS.md, "L2 on every table").
  l2_reference_rows: Optional[int] = None


def scaled_to_rows(config, rows: int):
  """``config`` with ``embedding_l2`` and ``wide_l2`` scaled by
  ``l2_reference_rows / rows``, and that scale (1.0 where the config has no reference).

  Why: the L2 penalties are added to the *mean* loss over a batch, so against the data
  their weight grows as the training rows grow, by rows / reference. A Gaussian prior of
  fixed width on every table row, whose MAP estimate is the penalised fit, needs the
  penalty on a mean loss to be 1 / (2 sigma^2 rows). Measured (docs/BENCHMARKS.md, "L2
  against the training rows"): at 80k rows (MovieLens) 1e-4 beats 1e-5 on every seed, by
  0.004-0.007 AUC; at 800k rows (the generated data, 3 seeds) scaling to 1.25e-5 changed
  AUC by -0.0007 (paired SE 0.0022). So it is off by default.
  """
  reference = getattr(config, 'l2_reference_rows', None)
  if not reference:
    return config, 1.0
  if rows < 1:
    raise ValueError(f'scaling the L2 penalties needs the training rows, got {rows}')
  scale = reference / rows
  cross = getattr(config, 'wide_cross_l2', None)
  return dataclasses.replace(config, embedding_l2=config.embedding_l2 * scale,
                             wide_l2=config.wide_l2 * scale,
                             wide_cross_l2=None if cross is None else cross * scale), scale


def with_wide_cells(config, rows: int, positive_rate: float):
  """``config`` with ``wide_max_cells`` lowered to the largest crossed column whose cells
  average ``wide_cell_information`` units of Fisher information on ``rows`` training
  rows of label rate ``positive_rate`` (as is where that field is None or absent).

  Why: a cell of a crossed column is one more id, learnt from the rows that fall in it. A
  column of many cells over few rows gives each cell a handful of clicks, which its
  weight fits as noise; how many cells the rows can support grows with the rows and with
  the label's variance p (1 - p). Measured on three datasets: docs/MODELS.md.
  """
  info = getattr(config, 'wide_cell_information', None)
  if not info:
    return config
  if info <= 0 or rows < 1 or not 0.0 <= positive_rate <= 1.0:
    raise ValueError(f'wide_cell_information {info}, rows {rows} and label rate '
                     f'{positive_rate}: need a positive information, rows >= 1, a rate in '
                     '[0, 1]')
  cells = int(rows * positive_rate * (1.0 - positive_rate) / info)
  return dataclasses.replace(config, wide_max_cells=min(config.wide_max_cells, cells))


def add_wide(inputs, body: Body, spec: fs.FeatureSpec, cards: Dict[str, int],
             config: EmbeddingConfig) -> Body:
  """``body`` with the wide logit (:class:`trainer.layers.wide.WideCrossLogit`) added to
  its own, when ``config.wide``."""
  if not config.wide:
    return body
  from trainer.layers.wide import WideCrossLogit
  wide = WideCrossLogit(spec.to_dict(), cards, config.wide_max_cells, config.wide_l2,
                        config.wide_cross_l2, name='wide')(inputs)
  logit = wide if body.logit is None else keras.layers.Add(name='deep_wide_logit')(
      [body.logit, wide])
  return Body(body.rep, logit)


def embed_fields(inputs, spec: fs.FeatureSpec, cards: Dict[str, int],
                 config: EmbeddingConfig, name: str = 'fields') -> tf.Tensor:
  """[batch, fields, embedding_dim] (:class:`trainer.layers.embedding.FieldEmbedding`)."""
  return FieldEmbedding(spec.to_dict(), cards, config.embedding_dim, config.embedding_l2,
                        adaptive=config.adaptive_embeddings,
                        sequence_encoder=config.sequence_encoder,
                        attention_heads=config.attention_heads,
                        dropout=config.embedding_dropout,
                        numeric_encoding=config.numeric_encoding,
                        numeric_frequencies=config.numeric_frequencies,
                        numeric_sigma=config.numeric_sigma,
                        sequence_match=config.sequence_match, name=name)(inputs)


def field_count(spec: fs.FeatureSpec, config: EmbeddingConfig) -> int:
  """Fields of :func:`embed_fields`'s output."""
  return len(field_names(spec, config.sequence_match))


def mlp(x, units: Sequence[int], dropout: float, name: str, l2: float = 0.0):
  """ReLU layers of widths ``units``, each followed by dropout."""
  reg = keras.regularizers.l2(l2) if l2 else None
  for i, u in enumerate(units):
    x = keras.layers.Dense(u, activation='relu', kernel_regularizer=reg,
                           name=f'{name}_{i}')(x)
    if dropout:
      x = keras.layers.Dropout(dropout, name=f'{name}_drop_{i}')(x)
  return x
