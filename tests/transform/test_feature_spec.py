"""The feature spec loader: the shipped specs load, bad specs fail with clear errors, and
a label's raw values are what Transform makes of them."""
import json
import os

import numpy as np
import pytest

from transform import feature_spec as fs

from helpers import REPO_ROOT

SPECS = os.path.join(REPO_ROOT, 'specs')


def _base():
  return {'labels': ['clicked'], 'categorical': ['gender'], 'numeric': [{'name': 'x'}]}


def test_default_spec():
  spec = fs.load(os.path.join(SPECS, 'default.yaml'))
  assert spec.primary_label.name == 'clicked'
  assert [l.name for l in spec.labels] == ['clicked', 'converted']
  assert len(spec.numeric) == 20
  by_name = {c.name: c for c in spec.categorical}
  assert by_name['user_id'].hash_buckets and by_name['ad_id'].hash_buckets
  assert spec.sequence[0].name == 'seq'
  assert 'true_ctr' in spec.ignore and 'true_ctr' not in spec.required_columns
  assert set(spec.slice_keys) == {'hour', 'day_of_week', 'gender', 'age_group', 'inventory_id'}
  assert (spec.action_key, spec.propensity_key) == ('action', 'propensity')


def test_movielens_spec():
  spec = fs.load(os.path.join(SPECS, 'movielens_100k.yaml'))
  label = spec.primary_label
  assert (label.name, label.column, label.threshold) == ('liked', 'rating', 4.0)
  assert set(spec.feature_names) == {'user_id', 'item_id', 'age', 'gender', 'occupation',
                                     'zip', 'hour', 'day_of_week', 'genres'}
  assert spec.sequence[0].separator == '|'


def test_json_roundtrip(tmp_path):
  spec = fs.load(os.path.join(SPECS, 'default.yaml'))
  path = tmp_path / 'spec.json'
  path.write_text(json.dumps(spec.to_dict()))
  again = fs.load(str(path))
  assert again.to_dict() == spec.to_dict()


def test_defaults():
  spec = fs.from_dict(_base())
  assert spec.primary_label.column == 'clicked'
  assert spec.categorical[0].oov_buckets == 1
  assert spec.numeric[0].log is False
  assert spec.split == {'train': 8, 'eval': 1, 'test': 1}


@pytest.mark.parametrize('change,message', [
    ({'labels': []}, 'at least one label'),
    ({'colour': 1}, r"unknown field\(s\) \['colour'\]"),
    ({'categorical': [{'name': 'g', 'bucketz': 3}]}, r'categorical\[0\]: unknown field'),
    ({'categorical': [{'name': 'g', 'oov_buckets': 'two'}]}, r'categorical\[0\]\.oov_buckets'),
    ({'categorical': [{'name': 'g', 'hash_buckets': 0}]}, 'must be positive'),
    ({'numeric': [{'name': 'gender'}]}, 'named more than once'),
    ({'numeric': [{'name': 'clicked'}]}, 'is also a feature'),
    ({'slice_keys': ['nope']}, 'slice_keys'),
    ({'ignore': ['gender']}, 'both ignored and used'),
    ({'split': {'train': 8}}, 'split must'),
    ({'split': {'train': 8, 'eval': 0}}, 'positive integer'),
    ({'categorical': [{'name': 'g', 'hash_buckets': 10, 'vocab_size': 5}]}, 'excludes'),
    ({'numeric': [{'log': True}]}, '"name" is required'),
    ({'action_key': 'gender'}, 'action_key and propensity_key go together'),
    ({'action_key': 'x', 'propensity_key': 'p'}, 'not a categorical feature'),
    ({'action_key': 'gender', 'propensity_key': 'x'}, 'must not be a feature'),
])
def test_invalid_specs(change, message):
  raw = _base()
  raw.update(change)
  with pytest.raises(fs.SpecError, match=message):
    fs.from_dict(raw)


def test_file_errors(tmp_path):
  with pytest.raises(fs.SpecError, match='no such file'):
    fs.load(str(tmp_path / 'missing.yaml'))
  bad = tmp_path / 'bad.yaml'
  bad.write_text('labels: [clicked\n')
  with pytest.raises(fs.SpecError, match='cannot parse'):
    fs.load(str(bad))
  top = tmp_path / 'list.yaml'
  top.write_text('- a\n- b\n')
  with pytest.raises(fs.SpecError, match='top level must be a mapping'):
    fs.load(str(top))


def test_format_doc_covers_every_field():
  doc = fs.describe_format()
  for key in fs.SPEC_SCHEMA:
    assert f'`{key}`' in doc
  for fields in fs.ITEM_SCHEMAS.values():
    for key in fields:
      assert f'`{key}`' in doc


def test_the_schema_is_the_dataclasses_own():
  """Each field's type, default and meaning are stated once, on the dataclass; the schema
  that validates files and documents the format is read from it."""
  import dataclasses
  for cls, schema in ((fs.FeatureSpec, fs.SPEC_SCHEMA), (fs.Label, fs.ITEM_SCHEMAS['labels']),
                      (fs.Categorical, fs.ITEM_SCHEMAS['categorical']),
                      (fs.Numeric, fs.ITEM_SCHEMAS['numeric']),
                      (fs.SequenceFeature, fs.ITEM_SCHEMAS['sequence'])):
    assert list(schema) == [f.name for f in dataclasses.fields(cls) if f.name != 'path']
  assert fs.ITEM_SCHEMAS['sequence']['max_len'][1] == fs.SequenceFeature('s').max_len == 20
  assert fs.SPEC_SCHEMA['split'][1] == fs.FeatureSpec(labels=[]).split
  a, b = fs.FeatureSpec(labels=[]), fs.FeatureSpec(labels=[])
  a.ignore.append('x')
  a.split['train'] = 3            # a default container is each spec's own copy
  assert b.ignore == [] and b.split['train'] == 8 and fs.SPEC_SCHEMA['ignore'][1] == []


def test_embedding_dim_rule():
  assert fs.default_embedding_dim(2) == 7
  assert fs.default_embedding_dim(1) == 6
  assert fs.default_embedding_dim(10**9) == 64


def test_feature_spec_doc_in_sync():
  with open(os.path.join(REPO_ROOT, 'docs', 'FEATURE_SPEC.md'), encoding='utf-8') as f:
    assert f.read() == fs.format_document(), 'regenerate docs/FEATURE_SPEC.md (see format_document)'


def test_label_values_match_transform(small_transformed):
  """The raw-row label is Transform's ``<label>_xf``, thresholds included."""
  label = fs.Label('liked', 'rating', threshold=4.0)
  np.testing.assert_array_equal(label.values([5, 4, 3.5, None, '4']), [1, 1, 0, 0, 1])
  np.testing.assert_array_equal(fs.Label('c', 'c').values([1, 0, None, 0.7]), [1, 0, 0, 1])
  spec, tables, _, _ = small_transformed
  test = tables['test']
  np.testing.assert_array_equal(spec.primary_label.values(test.column('clicked').to_numpy()),
                                test.column('clicked').to_numpy())
