"""components/off_policy_evaluator.py: a trained model's policy evaluated on fresh logs of
the generated data, against the exact value its world gives; the gate's verdict; reading
ExampleGen's split files."""

import numpy as np
import pytest

from components import off_policy_evaluator as ope_component
from datagen import synthetic


@pytest.fixture(scope='module')
def logs_and_truth():
  n, seed = 6000, 21
  world = synthetic.SyntheticWorld(seed)
  table = synthetic.generate(n, seed=seed, world=world)
  cols = synthetic.table_columns(table)
  tokens, offsets = synthetic.parse_seq(table.column('seq').to_pylist())
  match = synthetic.sequence_match(tokens, offsets, cols['ad_category'])
  q = np.stack([1 / (1 + np.exp(-world.click_logit(cols, match, np.full(n, a))))
                for a in range(synthetic.N_ACTIONS)], axis=1)
  return table.to_pandas(), q


def test_lift_of_the_greedy_policy_matches_the_exact_one(small_dnn, logs_and_truth):
  model_dir, _ = small_dnn
  frame, q = logs_and_truth
  report = ope_component.evaluate(model_dir, frame, ope_component.OpeConfig(
      n_actions=synthetic.N_ACTIONS, bootstrap=200))
  assert report['rows'] == len(frame) and report['n_actions'] == synthetic.N_ACTIONS
  assert report['blessed'] is True and 'reported only' in report['why']
  # The exact lift of the policy the report evaluated: greedy over the model's scores.
  from policy.ope import policies
  from policy.ope import logs as logs_lib
  log = logs_lib.from_frame(frame, {'clicked': 'reward'}, n_actions=synthetic.N_ACTIONS)
  scores = policies.model_scores(model_dir, log)
  greedy = policies.greedy(scores)[:, :, 0]
  true_value = float((greedy * q).sum(axis=1).mean())
  true_logged = float(q[np.arange(len(frame)), frame['action']].mean())
  lift = report['lift']
  assert abs(lift['value'] - (true_value - true_logged)) < 4 * lift['se']
  assert abs(report['value']['value'] - true_value) < 4 * report['value']['se']
  assert lift['ci_low'] < lift['value'] < lift['ci_high']


def test_gate_blesses_only_above_the_bound(small_dnn, logs_and_truth):
  model_dir, _ = small_dnn
  frame, _ = logs_and_truth
  low = ope_component.evaluate(model_dir, frame, ope_component.OpeConfig(
      gate=True, min_lift=-1.0, policy='epsilon-greedy', bootstrap=50))
  high = ope_component.evaluate(model_dir, frame, ope_component.OpeConfig(
      gate=True, min_lift=1.0, policy='softmax', temperature=0.5, bootstrap=50))
  assert low['blessed'] is True and 'above min_lift -1' in low['why']
  assert high['blessed'] is False and 'at or below min_lift 1' in high['why']
  with pytest.raises(ValueError, match='policy must be'):
    ope_component.OpeConfig(policy='best')


def test_reads_an_example_gen_split(tmp_path, logs_and_truth):
  import tensorflow as tf
  frame, _ = logs_and_truth
  rows = frame.head(5)
  path = tmp_path / 'Split-test'
  path.mkdir()
  with tf.io.TFRecordWriter(str(path / 'data_tfrecord-00000-of-00001.gz'),
                            options='GZIP') as w:
    for _, r in rows.iterrows():
      feats = {}
      for k, v in r.items():
        if isinstance(v, str):
          feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
        elif isinstance(v, (float, np.floating)):
          feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
        else:
          feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))
      w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
  from transform import examples
  back = examples.read_split(str(path))   # what the component reads its split with
  assert len(back) == 5 and list(back['action']) == list(rows['action'])
  assert list(back['seq']) == list(rows['seq'])
  np.testing.assert_allclose(back['propensity'], rows['propensity'], rtol=1e-6)
