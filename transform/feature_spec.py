"""The declarative feature spec: one YAML (or JSON) file describes a dataset.

A new dataset is a spec plus a folder of CSV or Parquet files; no code changes. For
example::

    name: default
    labels: [clicked]                  # the first label is the primary task
    categorical: [gender, hour, {name: user_id, min_frequency: 2}]
    numeric: [{name: l_feat_0, log: true}]
    sequence: [{name: seq, max_len: 20, target: ad_category}]
    ignore: [event_time, true_ctr]     # present in the data, never a feature
    slice_keys: [hour, gender]
    action_key: action                 # logged action and its propensity: off-policy
    propensity_key: propensity         # evaluation of the candidate's policy

Each field's type, default and meaning is stated once, on the dataclasses below
(:class:`FeatureSpec`, :class:`Label`, :class:`Categorical`, :class:`Numeric`,
:class:`SequenceFeature`); :data:`SPEC_SCHEMA`, :data:`ITEM_SCHEMAS` and
docs/FEATURE_SPEC.md (:func:`format_document`) are generated from them. Columns of the
data that the spec does not name are not read as features, and every error names the
offending field.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

import yaml

# The key under which a component's configuration carries the spec as a dict
# (``FeatureSpec.to_dict()``): Transform's and the Trainers' ``custom_config``, the
# GbdtEvaluator's ``config_json``.
SPEC_KEY = 'feature_spec'


class SpecError(ValueError):
  """A feature spec that cannot be used, with the reason and the offending field."""


def _field(typ, doc: str, default=dataclasses.MISSING):
  """A spec field: its type in the file (``typ``), its meaning, and its default (none:
  required). Lists and dicts get a fresh copy of the default each time."""
  metadata = {'type': typ, 'doc': doc}
  if isinstance(default, (list, dict)):
    return dataclasses.field(default_factory=lambda: type(default)(default),
                             metadata=metadata)
  return dataclasses.field(default=default, metadata=metadata)


def _schema(cls, leave_out=()) -> Dict[str, tuple]:
  """``{field: (type, default, meaning)}`` of a spec dataclass, in field order (None for
  a required field's default)."""
  out = {}
  for f in dataclasses.fields(cls):
    if f.name in leave_out:
      continue
    default = (f.default_factory() if f.default_factory is not dataclasses.MISSING
               else None if f.default is dataclasses.MISSING else f.default)
    out[f.name] = (f.metadata['type'], default, f.metadata['doc'])
  return out


_EMBEDDING_DOC = 'embedding width; derived from cardinality when null'


@dataclasses.dataclass(frozen=True)
class Label:
  name: str = _field(str, 'name of the label the model predicts (required)')
  column: Optional[str] = _field(str, 'raw column holding it; defaults to name', None)
  threshold: Optional[float] = _field(
      float, 'if set, the label is 1 where column >= threshold', None)

  def values(self, column) -> Any:
    """The 0/1 label of raw ``column`` values, as Transform computes ``<name>_xf``
    (:func:`transform.preprocessing._label`): ``column >= threshold`` where the spec sets
    one, else ``column > 0.5``; a missing value is 0. For code that reads raw rows
    (LightGBM, the GBDT baseline's evaluation)."""
    import numpy as np
    import pandas as pd
    v = pd.to_numeric(pd.Series(np.asarray(column, dtype=object)), errors='coerce')
    v = v.fillna(0.0).to_numpy(np.float64)
    return (v >= self.threshold if self.threshold is not None else v > 0.5).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class Categorical:
  name: str = _field(str, 'raw column, read as a string (required)')
  min_frequency: int = _field(
      int, 'drop values seen fewer times than this from the vocabulary', 1)
  vocab_size: Optional[int] = _field(int, 'keep only the most frequent values', None)
  oov_buckets: int = _field(int, 'buckets for values outside the vocabulary', 1)
  hash_buckets: Optional[int] = _field(
      int, 'hash into this many buckets instead of a vocabulary', None)
  embedding_dim: Optional[int] = _field(int, _EMBEDDING_DOC, None)


@dataclasses.dataclass(frozen=True)
class Numeric:
  name: str = _field(str, 'raw column (required)')
  log: bool = _field(bool, 'apply log1p(max(x, 0)) before the z-score', False)
  default: float = _field(float, 'value used for a missing cell', 0.0)


@dataclasses.dataclass(frozen=True)
class SequenceFeature:
  name: str = _field(str, 'raw column holding separated tokens (required)')
  max_len: int = _field(
      int, 'padded or truncated to this many tokens (most recent first)', 20)
  separator: str = _field(str, 'token separator inside a cell', ' ')
  min_frequency: int = _field(int, 'vocabulary frequency threshold', 1)
  vocab_size: Optional[int] = _field(int, 'keep only the most frequent tokens', None)
  oov_buckets: int = _field(int, 'buckets for tokens outside the vocabulary', 1)
  embedding_dim: Optional[int] = _field(int, _EMBEDDING_DOC, None)
  target: Optional[str] = _field(
      str, 'categorical feature whose values the tokens are (e.g. the candidate ad\'s '
      'category): the sequence then uses its vocabulary (or hashing) and embedding table, '
      'target attention reads the sequence against it, and the count of tokens equal to '
      'it is a feature of both the deep models and LightGBM', None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureSpec:
  """A validated feature spec. Build it with :func:`load` or :func:`from_dict`."""
  name: str = _field(str, 'short name of the dataset', 'dataset')
  labels: List[Label] = _field(
      list, 'one or more labels; the first is the primary task (required)')
  categorical: List[Categorical] = _field(list, 'categorical features', [])
  numeric: List[Numeric] = _field(list, 'numeric features', [])
  sequence: List[SequenceFeature] = _field(list, 'variable-length token sequences', [])
  ignore: List[str] = _field(list, 'columns present in the data that are never features',
                             [])
  slice_keys: List[str] = _field(list, 'features the Evaluator slices metrics by', [])
  group_key: Optional[str] = _field(
      str, 'feature that groups examples by user for GAUC (the impression-weighted '
      'per-user AUC); null leaves GAUC out', None)
  action_key: Optional[str] = _field(
      str, 'categorical feature holding the action a logging policy chose (e.g. the '
      'creative); with propensity_key, the pipeline evaluates the candidate model\'s '
      'policy off-policy on the test split', None)
  propensity_key: Optional[str] = _field(
      str, 'column holding the logging policy\'s probability of that action, in (0, 1]; '
      'not a feature (list it in ignore)', None)
  split: Dict[str, int] = _field(dict, 'hash-bucket ratio of the splits',
                                 {'train': 8, 'eval': 1, 'test': 1})
  split_key: Optional[str] = _field(
      str, 'column hashed to assign the split; null hashes the whole row', None)
  path: Optional[str] = None     # the file it was read from; not part of the format

  @property
  def primary_label(self) -> Label:
    return self.labels[0]

  @property
  def feature_names(self) -> List[str]:
    return ([f.name for f in self.categorical] + [f.name for f in self.numeric]
            + [f.name for f in self.sequence])

  def field(self, name: str):
    """The feature called ``name`` (categorical, numeric or sequence)."""
    for f in self.categorical + self.numeric + self.sequence:
      if f.name == name:
        return f
    raise KeyError(name)

  def targets(self) -> Dict[str, str]:
    """Categorical features that some sequence's tokens are values of: {target: sequence}."""
    return {q.target: q.name for q in self.sequence if q.target}

  @property
  def label_columns(self) -> List[str]:
    return list(dict.fromkeys(l.column for l in self.labels))

  @property
  def required_columns(self) -> List[str]:
    """Every raw column the pipeline reads: features and label columns."""
    return list(dict.fromkeys(self.feature_names + self.label_columns))

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d.pop('path')
    return d


# The format, generated from the dataclasses above: field -> (type, default, meaning).
SPEC_SCHEMA = _schema(FeatureSpec, leave_out=('path',))
ITEM_SCHEMAS = {'labels': _schema(Label), 'categorical': _schema(Categorical),
                'numeric': _schema(Numeric), 'sequence': _schema(SequenceFeature)}


def _check_type(value, typ, where: str):
  if value is None:
    return None
  if typ is float and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
    raise SpecError(f'{where}: expected an integer, got {value!r}')
  if typ in (float, str, bool, list, dict) and not isinstance(value, typ):
    raise SpecError(f'{where}: expected {typ.__name__}, got {type(value).__name__} {value!r}')
  return value


def _item(raw, fields, where: str) -> Dict[str, Any]:
  if isinstance(raw, str):
    raw = {'name': raw}
  if not isinstance(raw, dict):
    raise SpecError(f'{where}: expected a mapping or a column name, got {raw!r}')
  unknown = set(raw) - set(fields)
  if unknown:
    raise SpecError(f'{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(fields)}')
  if not raw.get('name'):
    raise SpecError(f'{where}: "name" is required')
  out = {}
  for key, (typ, default, _) in fields.items():
    out[key] = _check_type(raw.get(key, default), typ, f'{where}.{key}')
  for key in ('min_frequency', 'oov_buckets', 'max_len', 'hash_buckets', 'vocab_size',
              'embedding_dim'):
    if key in out and out[key] is not None and out[key] < (0 if key == 'oov_buckets' else 1):
      raise SpecError(f'{where}.{key}: must be positive, got {out[key]}')
  return out


def from_dict(raw: Dict[str, Any], path: Optional[str] = None) -> FeatureSpec:
  """Validates a parsed spec and returns a :class:`FeatureSpec`."""
  src = f'feature spec {path}' if path else 'feature spec'
  if not isinstance(raw, dict):
    raise SpecError(f'{src}: the top level must be a mapping, got {type(raw).__name__}')
  unknown = set(raw) - set(SPEC_SCHEMA)
  if unknown:
    raise SpecError(f'{src}: unknown field(s) {sorted(unknown)}; allowed: {sorted(SPEC_SCHEMA)}')
  top = {}
  for key, (typ, default, _) in SPEC_SCHEMA.items():
    top[key] = _check_type(raw.get(key, default), typ, f'{src}: {key}')
  if not top['labels']:
    raise SpecError(f'{src}: "labels" must name at least one label')
  labels = []
  for i, l in enumerate(top['labels']):
    d = _item(l, ITEM_SCHEMAS['labels'], f'{src}: labels[{i}]')
    d['column'] = d['column'] or d['name']
    labels.append(Label(**d))
  groups = {}
  for group, cls in (('categorical', Categorical), ('numeric', Numeric),
                     ('sequence', SequenceFeature)):
    groups[group] = [cls(**_item(x, ITEM_SCHEMAS[group], f'{src}: {group}[{i}]'))
                     for i, x in enumerate(top[group])]
  for i, c in enumerate(groups['categorical']):
    if c.hash_buckets and (c.vocab_size or c.min_frequency > 1):
      raise SpecError(f'{src}: categorical[{i}] ({c.name}): hash_buckets excludes '
                      'vocab_size and min_frequency')
  categorical = {c.name: c for c in groups['categorical']}
  for i, q in enumerate(groups['sequence']):
    if q.target is None:
      continue
    if q.target not in categorical:
      raise SpecError(f'{src}: sequence[{i}] ({q.name}).target "{q.target}" is not a '
                      'categorical feature of this spec')
    if q.min_frequency != 1 or q.vocab_size or q.oov_buckets != 1:
      raise SpecError(f'{src}: sequence[{i}] ({q.name}): with a target, the vocabulary is '
                      f'the target\'s; set min_frequency, vocab_size and oov_buckets on '
                      f'"{q.target}" instead')
  features = [f.name for g in groups.values() for f in g]
  seen = set()
  for name in features:
    if name in seen:
      raise SpecError(f'{src}: feature "{name}" is named more than once')
    seen.add(name)
  if not features:
    raise SpecError(f'{src}: no features: name at least one categorical, numeric or '
                    'sequence column')
  label_names = [l.name for l in labels]
  if len(set(label_names)) != len(label_names):
    raise SpecError(f'{src}: label names must be unique, got {label_names}')
  for l in labels:
    if l.column in seen:
      raise SpecError(f'{src}: label column "{l.column}" is also a feature')
    if l.name in seen:
      raise SpecError(f'{src}: label name "{l.name}" is also a feature')
  ignore = [_check_type(x, str, f'{src}: ignore[{i}]') for i, x in enumerate(top['ignore'])]
  both = set(ignore) & (seen | {l.column for l in labels})
  if both:
    raise SpecError(f'{src}: {sorted(both)} are both ignored and used')
  for i, k in enumerate(top['slice_keys']):
    if k not in seen:
      raise SpecError(f'{src}: slice_keys[{i}] "{k}" is not a feature of this spec')
  if top['group_key'] is not None and top['group_key'] not in seen:
    raise SpecError(f'{src}: group_key "{top["group_key"]}" is not a feature of this spec')
  if (top['action_key'] is None) != (top['propensity_key'] is None):
    raise SpecError(f'{src}: action_key and propensity_key go together')
  if top['action_key'] is not None and top['action_key'] not in categorical:
    raise SpecError(f'{src}: action_key "{top["action_key"]}" is not a categorical feature '
                    'of this spec')
  if top['propensity_key'] is not None and (
      top['propensity_key'] in seen or top['propensity_key'] in {l.column for l in labels}):
    raise SpecError(f'{src}: propensity_key "{top["propensity_key"]}" must not be a feature '
                    'or a label')
  split = top['split']
  if not split or set(split) - {'train', 'eval', 'test'} or 'train' not in split \
      or 'eval' not in split:
    raise SpecError(f'{src}: split must map train, eval and optionally test to positive '
                    f'integers, got {split!r}')
  for k, v in split.items():
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
      raise SpecError(f'{src}: split.{k} must be a positive integer, got {v!r}')
  return FeatureSpec(name=top['name'], labels=labels, ignore=ignore,
                     slice_keys=list(top['slice_keys']), split=dict(split),
                     split_key=top['split_key'], group_key=top['group_key'],
                     action_key=top['action_key'], propensity_key=top['propensity_key'],
                     path=path, **groups)


def load(path: str) -> FeatureSpec:
  """Reads and validates a YAML or JSON spec file."""
  if not os.path.isfile(path):
    raise SpecError(f'feature spec {path}: no such file')
  with open(path, encoding='utf-8') as f:
    text = f.read()
  try:
    raw = json.loads(text) if path.endswith('.json') else yaml.safe_load(text)
  except (ValueError, yaml.YAMLError) as e:
    raise SpecError(f'feature spec {path}: cannot parse: {e}') from e
  return from_dict(raw, os.path.abspath(path))


def default_embedding_dim(cardinality: int) -> int:
  """Embedding width from the number of distinct values: 6 * cardinality ** 0.25, in
  [4, 64] (the rule of thumb from Google's feature-column guide)."""
  return int(min(64, max(4, round(6 * max(cardinality, 1) ** 0.25))))


def describe_format() -> str:
  """The spec format as Markdown, generated from :data:`SPEC_SCHEMA`."""
  lines = ['| field | type | default | meaning |', '|---|---|---|---|']
  for key, (typ, default, doc) in SPEC_SCHEMA.items():
    lines.append(f'| `{key}` | {typ.__name__} | `{default!r}` | {doc} |')
  for group, fields in ITEM_SCHEMAS.items():
    lines += ['', f'Each entry of `{group}`:', '', '| field | type | default | meaning |',
              '|---|---|---|---|']
    for key, (typ, default, doc) in fields.items():
      lines.append(f'| `{key}` | {typ.__name__} | `{default!r}` | {doc} |')
  return '\n'.join(lines)


def format_document() -> str:
  """docs/FEATURE_SPEC.md: the format, generated from the schema (a test keeps it in sync).

  Regenerate with ``python -c "from transform import feature_spec as fs;
  open('docs/FEATURE_SPEC.md', 'w').write(fs.format_document())"``.
  """
  return ('# Feature spec format\n\n'
          'Generated from `transform/feature_spec.py` (`SPEC_SCHEMA`); do not edit by hand.\n'
          'A dataset is a spec (YAML or JSON) plus a folder of CSV or Parquet files. Examples:\n'
          '`specs/default.yaml`, `specs/movielens_100k.yaml`. An item of `labels` or of a\n'
          'feature list may also be a bare column name.\n\n' + describe_format() + '\n')
