"""python -m policy ope: the table and JSON on the Open Bandit Dataset and on generated
logs; bad input gives a clear error and exit code 2."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from policy import __main__ as policy_main
from policy.ope import cli
from helpers import SHARED_DATA

OBD = os.path.join(SHARED_DATA, 'open_bandit_dataset')
OBD_ARGS = ['--columns', 'item_id=action,click=reward,propensity_score=propensity',
            '--position-base', '1', '--drop', 'Unnamed: 0,timestamp']


@pytest.mark.skipif(not os.path.isdir(OBD), reason=f'Open Bandit Dataset not found at {OBD}')
def test_bts_value_from_random_logs(tmp_path, capsys):
  out = tmp_path / 'bts.json'
  rc = policy_main.main(['ope', '--logs', os.path.join(OBD, 'random', 'men', 'men.csv'),
                         '--policy', 'bts', '--prior', os.path.join(OBD, 'prior_bts.yaml'),
                         '--campaign', 'men', '--n-actions', '34', '--n-sim', '20000',
                         '--out', str(out)] + OBD_ARGS)
  assert rc == 0
  text = capsys.readouterr().out
  assert 'Bernoulli TS (men prior' in text and 'ips' in text and 'snips' in text
  result = json.loads(out.read_text())
  assert [e['estimator'] for e in result['estimates']] == ['ips', 'snips']
  for e in result['estimates']:
    assert e['ci_low'] < e['value'] < e['ci_high'] and e['n'] == 10_000


def test_uniform_policy_on_uniform_logs_is_the_logged_mean(tmp_path, capsys):
  rng = np.random.default_rng(0)
  n = 2000
  frame = pd.DataFrame({'item': rng.integers(0, 4, n), 'click': rng.random(n) < 0.3,
                        'p': 0.25})
  path = tmp_path / 'logs.csv'
  frame.to_csv(path, index=False)
  out = tmp_path / 'r.json'
  assert policy_main.main(['ope', '--logs', str(path), '--policy', 'random', '--columns',
                           'item=action,click=reward,p=propensity', '--out', str(out)]) == 0
  result = json.loads(out.read_text())
  for e in result['estimates']:
    assert e['value'] == pytest.approx(frame['click'].mean())
  assert result['logged_mean_reward'] == pytest.approx(frame['click'].mean())


@pytest.mark.parametrize('extra, message', [
    (['--policy', 'random', '--estimators', 'dr'], 'dr needs a reward model'),
    (['--policy', 'bts'], 'needs --prior and --campaign'),
    (['--policy', 'greedy'], 'must be random, bts, epsilon-greedy or a SavedModel'),
    (['--policy', 'epsilon-greedy'], 'needs --model'),
])
def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys, extra, message):
  path = tmp_path / 'logs.csv'
  pd.DataFrame({'action': [0, 1], 'reward': [0, 1], 'propensity': [0.5, 0.5]}).to_csv(
      path, index=False)
  assert policy_main.main(['ope', '--logs', str(path)] + extra) == 2
  assert message in capsys.readouterr().err


def test_bad_rows_exit_2_naming_them(tmp_path, capsys):
  path = tmp_path / 'logs.csv'
  pd.DataFrame({'action': [0, 1, 1], 'reward': [0, 1, 0],
                'propensity': [0.5, 0.0, 0.5]}).to_csv(path, index=False)
  assert policy_main.main(['ope', '--logs', str(path), '--policy', 'random']) == 2
  assert 'propensity must be in (0, 1]; it is not in row 1' in capsys.readouterr().err


def test_usage_without_a_command(capsys):
  assert policy_main.main([]) == 2
  assert 'ope' in capsys.readouterr().err
  assert cli._mapping('a=b, c = d') == {'a': 'b', 'c': 'd'}


def test_model_base_path_resolves_to_its_newest_version(tmp_path):
  for v in ('3', '12', 'tmp'):
    (tmp_path / v).mkdir()
    (tmp_path / v / 'saved_model.pb').write_bytes(b'')
  assert cli._model_dir(str(tmp_path)) == str(tmp_path / '12')
  assert cli._model_dir(str(tmp_path / '3')) == str(tmp_path / '3')
  with pytest.raises(ValueError, match='not a SavedModel nor a model base path'):
    cli._model_dir(str(tmp_path / 'tmp' / 'nothing'))
