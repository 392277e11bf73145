"""The generated default dataset: determinism, rates, labels vs. true probabilities."""
import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from datagen import synthetic as s

N = 200_000


@pytest.fixture(scope='module')
def table():
  return s.generate(N, seed=7)


def test_deterministic_by_seed(table):
  again = s.generate(N, seed=7)
  assert table.equals(again)
  other = s.generate(N, seed=8)
  assert not np.array_equal(table.column('clicked').to_numpy(),
                            other.column('clicked').to_numpy())


def test_schema_and_cardinalities(table):
  cols = set(table.column_names)
  for c in ('gender', 'age_group', 'inventory_id', 'day_of_week', 'hour', 'user_id', 'ad_id',
            'advertiser_id', 'campaign_id', 'seq', 'clicked', 'converted', 'action',
            'propensity', 'market_price', 'true_ctr', 'true_cvr', 'true_ctcvr'):
    assert c in cols
  dense = [c for c in cols if c.startswith(('l_feat_', 'feat_', 'history_'))]
  assert len(dense) == 20
  for c, k in (('gender', 2), ('age_group', 8), ('inventory_id', 18), ('day_of_week', 7),
               ('hour', 24)):
    v = table.column(c).to_numpy()
    assert v.min() == 0 and v.max() == k - 1
  # High-cardinality ids: >= 100k possible values, and many seen even in 200k rows.
  assert s.N_USERS >= 100_000 and s.N_ADS >= 100_000
  assert len(np.unique(table.column('user_id').to_numpy())) > 60_000
  assert len(np.unique(table.column('ad_id').to_numpy())) > 50_000
  # Heavy tails: the max of a counter is far above its median.
  x = table.column('l_feat_3').to_numpy()
  assert x.max() > 20 * np.median(x)
  # Variable-length sequences, some empty.
  lens = np.array([len(q.split()) for q in table.column('seq').to_pylist()[:5000]])
  assert lens.min() == 0 and lens.max() > 10


def test_label_rates(table):
  clicked = table.column('clicked').to_numpy()
  converted = table.column('converted').to_numpy()
  assert 0.01 <= clicked.mean() <= 0.03
  assert np.all(converted <= clicked), 'a conversion without a click'
  assert 0.05 <= converted.sum() / clicked.sum() <= 0.15


@pytest.mark.parametrize('label,truth,given', [('clicked', 'true_ctr', None),
                                               ('converted', 'true_cvr', 'clicked')])
def test_true_probabilities_are_calibrated(table, label, truth, given):
  y = table.column(label).to_numpy().astype(float)
  p = table.column(truth).to_numpy()
  if given:
    keep = table.column(given).to_numpy() == 1
    y, p = y[keep], p[keep]
  # Deciles of the true probability: observed rate within 4 standard errors.
  edges = np.quantile(p, np.linspace(0, 1, 11))
  idx = np.clip(np.searchsorted(edges, p, side='right') - 1, 0, 9)
  for b in range(10):
    m = idx == b
    se = np.sqrt(p[m].mean() * (1 - p[m].mean()) / m.sum())
    assert abs(y[m].mean() - p[m].mean()) < 4 * se + 1e-9, f'decile {b}'
  np.testing.assert_allclose(table.column('true_ctcvr').to_numpy(),
                             table.column('true_ctr').to_numpy()
                             * table.column('true_cvr').to_numpy())


def test_bayes_auc_and_planted_structure(table):
  y = table.column('clicked').to_numpy()
  bayes = roc_auc_score(y, table.column('true_ctr').to_numpy())
  assert 0.75 < bayes < 0.9
  # The sequence effect: rows whose history holds the ad's category click more.
  w = s.SyntheticWorld(7)
  tokens, offsets = s.parse_seq(table.column('seq').to_pylist())
  match = s.sequence_match(tokens, offsets, w.ad_category[table.column('ad_id').to_numpy()])
  assert y[match >= 2].mean() > 1.5 * y[match == 0].mean()


def test_truth_recomputable_from_columns(table):
  """true_ctr is a pure function of the row's columns (so OPE can score any action)."""
  w = s.SyntheticWorld(7)
  cols = s.table_columns(table)
  tokens, offsets = s.parse_seq(table.column('seq').to_pylist())
  match = s.sequence_match(tokens, offsets, w.ad_category[cols['ad_id']])
  np.testing.assert_allclose(1 / (1 + np.exp(-w.click_logit(cols, match))),
                             table.column('true_ctr').to_numpy(), rtol=1e-12)
  pi = w.logging_policy(cols)
  np.testing.assert_allclose(pi[np.arange(N), cols['action']],
                             table.column('propensity').to_numpy())
  np.testing.assert_allclose(pi.sum(axis=1), 1.0)
  # Another action changes the truth.
  other = w.click_logit(cols, match, action=(cols['action'] + 1) % s.N_ACTIONS)
  assert not np.allclose(other, w.click_logit(cols, match))


def test_spurious_feature_drifts():
  t = s.generate(100_000, seed=3, spurious=True, drift_at=0.5)
  y = t.column('clicked').to_numpy()
  x = t.column('spurious').to_numpy()
  before, after = slice(0, 50_000), slice(50_000, None)
  assert roc_auc_score(y[before], x[before]) > 0.8
  assert abs(roc_auc_score(y[after], x[after]) - 0.5) < 0.05
  assert 'spurious' not in s.generate(1000, seed=3).column_names


def test_market_price_and_time_order(table):
  mp = table.column('market_price').to_numpy()
  assert mp.min() > 0
  assert np.corrcoef(np.log(mp), np.log(table.column('true_ctr').to_numpy()))[0, 1] > 0.2
  assert np.all(np.diff(table.column('event_time').to_numpy()) >= 0)


def test_write_csv_and_parquet(tmp_path):
  import pyarrow.csv as pacsv
  import pyarrow.parquet as pq
  t = s.generate(1000, seed=1)
  folders = s.write(t, str(tmp_path), ('csv', 'parquet'), shards=2)
  csv_files = sorted((tmp_path / 'csv').iterdir())
  assert len(csv_files) == 2
  header = csv_files[0].read_text().splitlines()[0]
  assert header.split(',') == t.column_names  # bare header: ExampleGen keeps quotes
  back = pa.concat_tables([pacsv.read_csv(str(f)) for f in csv_files])
  assert back.num_rows == 1000
  np.testing.assert_array_equal(back.column('clicked').to_numpy(),
                                t.column('clicked').to_numpy())
  pq_back = pa.concat_tables([pq.read_table(str(f)) for f in
                              sorted((tmp_path / 'parquet').iterdir())])
  assert pq_back.equals(t)
  assert set(folders) == {'csv', 'parquet'}


def test_bad_arguments():
  with pytest.raises(ValueError, match='n must be positive'):
    s.generate(0)
  with pytest.raises(ValueError, match='drift_at'):
    s.generate(10, drift_at=2)
