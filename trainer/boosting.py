"""LightGBM set up as a strong user sets it up: the reference every deep model must beat.

A deep CTR model is only worth serving if it beats gradient boosted trees that were given
the same rows and as fair a chance. This module is that chance, in one place, for the
benchmarks (``bench/quality``, ``bench/models``) and for anything else that needs the
reference:

* :class:`Encoder` turns columns (raw, as a LightGBM user reads them, or ids) into
  LightGBM's inputs, fitted on the training rows only:

  - every categorical column is a *native* LightGBM categorical, high-cardinality ids
    included (its categories are the training rows' values; a value not seen in training
    is missing). LightGBM's own controls (``max_cat_to_onehot``, ``cat_smooth``,
    ``cat_l2``, ``min_data_per_group``, ``max_cat_threshold``) are tuned;
  - a categorical with more than :data:`HIGH_CARDINALITY` values can instead, or as
    well, be given as its training-row count (``id_encoding``: ``native``, ``count`` or
    ``both``; tuned too, since which validates better depends on the data);
  - numeric columns as they are (trees need no scaling);
  - each sequence as its length, the count of its tokens equal to its ``target`` field
    (where the spec names one), and the counts of its :data:`SEQUENCE_TOKENS` most
    frequent training tokens (multi-hot).

* :func:`train` fits one configuration, early-stopped on the eval split's logloss
  (LightGBM's own metric for the binary objective: with a few hundred eval positives the
  AUC of single rounds is too noisy to stop on; it stopped trials after 4 rounds);
* :func:`tune` is a seeded random search over :func:`sample_params`, chosen on the eval
  split's AUC; its first trial is LightGBM's defaults, so the tuned model is never worse
  on eval than the default one.

Nothing here looks at test rows: the encoder and the booster see train, the early
stopping and the choice see eval.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from transform import feature_spec as fs

HIGH_CARDINALITY = 1000        # more values than this: an id, count encoding is an option
SEQUENCE_TOKENS = 64           # multi-hot columns per sequence (most frequent tokens)
ID_ENCODINGS = ('native', 'count', 'both')
MAX_ROUNDS = 5000
EARLY_STOPPING_ROUNDS = 100

# LightGBM's own defaults for what the search varies (lightgbm.readthedocs.io,
# Parameters): the first trial of every search, and the "default LightGBM" row.
DEFAULT_PARAMS: Dict[str, Any] = dict(
    learning_rate=0.1, num_leaves=31, min_data_in_leaf=20, feature_fraction=1.0,
    bagging_fraction=1.0, bagging_freq=0, lambda_l1=0.0, lambda_l2=0.0, cat_smooth=10.0,
    cat_l2=10.0, min_data_per_group=100, max_cat_threshold=32, max_cat_to_onehot=4,
    id_encoding='native')


def _as_strings(values) -> np.ndarray:
  """Column values as strings (missing as ''), the form categories are matched in."""
  import pandas as pd
  s = pd.Series(values)
  return s.astype(object).where(s.notna(), '').astype(str).to_numpy()


def _tokens(cells, separator: str) -> List[List[str]]:
  return [[t for t in str(c).split(separator) if t] if c is not None else []
          for c in _as_strings(cells)]


@dataclasses.dataclass
class Encoder:
  """Column -> LightGBM input mapping, fitted on the training rows (:meth:`fit`)."""
  spec: fs.FeatureSpec
  categories: Dict[str, Any] = dataclasses.field(default_factory=dict)
  counts: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)
  sequence_vocab: Dict[str, List[str]] = dataclasses.field(default_factory=dict)

  @classmethod
  def fit(cls, columns: Mapping[str, Any], spec: fs.FeatureSpec) -> 'Encoder':
    import pandas as pd
    enc = cls(spec)
    for f in spec.categorical:
      values = pd.Series(_as_strings(columns[f.name]))
      freq = values.value_counts()
      enc.categories[f.name] = pd.Index(sorted(freq.index))
      if len(freq) > HIGH_CARDINALITY:
        enc.counts[f.name] = freq.to_dict()
    for q in spec.sequence:
      freq: Dict[str, int] = {}
      for t in _tokens(columns[q.name], q.separator):
        for x in t:
          freq[x] = freq.get(x, 0) + 1
      enc.sequence_vocab[q.name] = sorted(freq, key=lambda k: (-freq[k], k))[:SEQUENCE_TOKENS]
    return enc

  def to_dict(self) -> Dict[str, Any]:
    """The fitted mapping as JSON-able values (:meth:`from_dict` inverts it)."""
    return {'spec': self.spec.to_dict(),
            'categories': {k: list(v) for k, v in self.categories.items()},
            'counts': self.counts, 'sequence_vocab': self.sequence_vocab}

  @classmethod
  def from_dict(cls, state: Mapping[str, Any]) -> 'Encoder':
    import pandas as pd
    return cls(fs.from_dict(state['spec']),
               {k: pd.Index(v) for k, v in state['categories'].items()},
               {k: dict(v) for k, v in state['counts'].items()},
               {k: list(v) for k, v in state['sequence_vocab'].items()})

  @property
  def high_cardinality(self) -> List[str]:
    return sorted(self.counts)

  def transform(self, columns: Mapping[str, Any], id_encoding: str = 'native'):
    """(DataFrame, categorical column names) of ``columns``."""
    import pandas as pd
    if id_encoding not in ID_ENCODINGS:
      raise ValueError(f'id_encoding must be one of {ID_ENCODINGS}, got {id_encoding!r}')
    out: Dict[str, Any] = {}
    categorical = []
    for f in self.spec.categorical:
      values = _as_strings(columns[f.name])
      high = f.name in self.counts
      if not high or id_encoding in ('native', 'both'):
        out[f.name] = pd.Categorical(values, categories=self.categories[f.name])
        categorical.append(f.name)
      if high and id_encoding in ('count', 'both'):
        counts = self.counts[f.name]
        out[f'{f.name}_count'] = np.array([counts.get(v, 0) for v in values], np.float64)
    for f in self.spec.numeric:
      out[f.name] = pd.to_numeric(pd.Series(columns[f.name]), errors='coerce').to_numpy(
          np.float64)
    for q in self.spec.sequence:
      tokens = _tokens(columns[q.name], q.separator)
      out[f'{q.name}_len'] = np.array([len(t) for t in tokens], np.float64)
      if q.target:
        target = _as_strings(columns[q.target])
        out[f'{q.name}_matches_{q.target}'] = np.array(
            [sum(1 for x in t if x == c) for t, c in zip(tokens, target)], np.float64)
      index = {tok: i for i, tok in enumerate(self.sequence_vocab[q.name])}
      multi = np.zeros((len(tokens), len(index)), np.float32)
      for r, t in enumerate(tokens):
        for x in t:
          i = index.get(x)
          if i is not None:
            multi[r, i] += 1
      for tok, i in index.items():
        out[f'{q.name}_has_{i}'] = multi[:, i]
    return pd.DataFrame(out), categorical


def sample_params(rng: np.random.Generator) -> Dict[str, Any]:
  """One random configuration of the search space (log-uniform where the scale matters)."""
  logu = lambda lo, hi: float(np.exp(rng.uniform(np.log(lo), np.log(hi))))  # noqa: E731
  return dict(
      learning_rate=logu(0.01, 0.2), num_leaves=int(round(logu(8, 256))),
      min_data_in_leaf=int(round(logu(5, 500))), feature_fraction=rng.uniform(0.4, 1.0),
      bagging_fraction=rng.uniform(0.5, 1.0), bagging_freq=1,
      lambda_l1=logu(1e-4, 10.0), lambda_l2=logu(1e-4, 10.0),
      cat_smooth=logu(1.0, 100.0), cat_l2=logu(1.0, 100.0),
      min_data_per_group=int(round(logu(10, 500))),
      max_cat_threshold=int(rng.choice([16, 32, 64, 128])),
      max_cat_to_onehot=int(rng.choice([4, 8, 16, 32])),
      id_encoding=str(rng.choice(ID_ENCODINGS)))


@dataclasses.dataclass
class Fitted:
  booster: Any
  params: Dict[str, Any]
  best_iteration: int
  eval_auc: float
  seconds: float

  def predict(self, x) -> np.ndarray:
    return np.asarray(self.booster.predict(x, num_iteration=self.best_iteration), np.float64)

  def logits(self, x) -> np.ndarray:
    """The log-odds behind :meth:`predict` (LightGBM's raw score)."""
    return np.asarray(self.booster.predict(x, num_iteration=self.best_iteration,
                                           raw_score=True), np.float64)


def train(encoder: Encoder, train_cols, train_y, eval_cols, eval_y,
          params: Optional[Dict[str, Any]] = None, seed: int = 0,
          threads: int = 0, cache: Optional[Dict] = None) -> Fitted:
  """One LightGBM configuration (``params``: :data:`DEFAULT_PARAMS` keys), early-stopped
  on the eval split's logloss; ``eval_auc`` is the AUC of the stopped model.

  ``cache``: a dict that keeps the encoded splits per id encoding,
  ``{encoding: ((train frame, categorical names), eval frame)}``, and LightGBM's binned
  datasets of them (key ``('datasets', encoding)``), so that several calls (a search) or
  the caller encode and bin each split once. The binned datasets are built with
  ``feature_pre_filter`` off, so that one serves every ``min_data_in_leaf``."""
  import lightgbm as lgb
  from sklearn.metrics import roc_auc_score
  p = dict(DEFAULT_PARAMS, **(params or {}))
  id_encoding = p.pop('id_encoding')
  cache = cache if cache is not None else {}
  if id_encoding not in cache:
    cache[id_encoding] = (encoder.transform(train_cols, id_encoding),
                          encoder.transform(eval_cols, id_encoding)[0])
  (x_train, categorical), x_eval = cache[id_encoding]
  lgb_params = dict(p, objective='binary', metric='binary_logloss', verbose=-1, seed=seed,
                    num_threads=threads or os.cpu_count(), deterministic=True,
                    force_col_wise=True)
  start = time.perf_counter()
  if ('datasets', id_encoding) not in cache:
    dtrain = lgb.Dataset(x_train, np.asarray(train_y, np.float64),
                         categorical_feature=categorical, free_raw_data=False,
                         params={'feature_pre_filter': False, 'verbose': -1})
    dvalid = lgb.Dataset(x_eval, np.asarray(eval_y, np.float64), reference=dtrain,
                         categorical_feature=categorical)
    cache[('datasets', id_encoding)] = (dtrain, dvalid)
  dtrain, dvalid = cache[('datasets', id_encoding)]
  booster = lgb.train(lgb_params, dtrain, num_boost_round=MAX_ROUNDS, valid_sets=[dvalid],
                      callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)])
  seconds = time.perf_counter() - start
  best = booster.best_iteration or booster.current_iteration()
  auc = float(roc_auc_score(eval_y, booster.predict(x_eval, num_iteration=best)))
  return Fitted(booster, dict(p, id_encoding=id_encoding), best, auc, seconds)


def tune(encoder: Encoder, train_cols, train_y, eval_cols, eval_y, trials: int = 30,
         seed: int = 0, log=None) -> List[Fitted]:
  """``trials`` configurations (the first: LightGBM's defaults, then
  :func:`sample_params`), best eval AUC first."""
  if trials < 1:
    raise ValueError(f'trials must be at least 1, got {trials}')
  rng = np.random.default_rng(seed)
  cache: Dict = {}
  fitted = []
  for i in range(trials):
    params = dict(DEFAULT_PARAMS) if i == 0 else sample_params(rng)
    f = train(encoder, train_cols, train_y, eval_cols, eval_y, params, seed, cache=cache)
    # Keep the booster only while it may be the best (they can be large).
    fitted.append(f)
    if log:
      log(f'lightgbm trial {i}: eval AUC {f.eval_auc:.4f}, {f.best_iteration} rounds, '
          f'{f.seconds:.0f} s, {params}')
    best = max(fitted, key=lambda t: t.eval_auc)
    for t in fitted:
      if t is not best:
        t.booster = None
  return sorted(fitted, key=lambda t: -t.eval_auc)


def columns_of(table, names: Sequence[str]) -> Dict[str, np.ndarray]:
  """The named columns of a pyarrow table as NumPy arrays."""
  return {n: table.column(n).to_numpy() for n in names}
