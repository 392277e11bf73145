"""python -m policy bid-sim (policy/bidding/cli.py): its table, plots and saved results;
bad input exits 2."""
import json
import os

from policy.bidding import cli

from helpers import shared_data, write_auction_log


def test_bid_sim_cli_prints_plots_and_saves(tmp_path, capsys):
  data = shared_data('ipinyou_rlbdp')
  rc = cli.main(['--campaign', '2997', '--c0', '1/16', '--policy', 'lagrangian',
                 '--data', data, '--out', str(tmp_path)])
  out = capsys.readouterr().out
  assert rc == 0 and 'lagrangian' in out and 'hindsight' in out and 'budget 3938' in out
  for name in ('spend.png', 'multiplier.png', 'clicks.png'):
    assert os.path.getsize(tmp_path / name) > 1000
  rows = json.load(open(tmp_path / 'results.json'))
  assert {r['policy'] for r in rows} == {'constant', 'lin', 'lagrangian', 'hindsight'}


def test_bid_sim_cli_errors_exit_2(tmp_path, capsys):
  folder = tmp_path / 'rlb'
  (folder / 'validation').mkdir(parents=True)
  (folder / 'info').mkdir()
  write_auction_log(folder / 'validation' / '7.validation.txt', [['0\t1\t0.1', '0\t1\tbad']])
  json.dump({'cost_train': 100, 'imp_train': 10, 'clk_train': 1},
            open(folder / 'info' / '7.info.json', 'w'))
  assert cli.main(['--campaign', '7', '--data', str(folder)]) == 2
  assert '7.validation.txt:4: malformed auction line' in capsys.readouterr().err
  assert cli.main(['--campaign', '7', '--data', str(folder), '--c0', '0']) == 2
  assert 'c0 must be > 0' in capsys.readouterr().err
  assert cli.main(['--campaign', '8', '--data', str(folder)]) == 2
  assert 'no such file' in capsys.readouterr().err
  assert cli.main(['--server', '127.0.0.1:1', '--pctr-calibration', 'platt']) == 2
  assert 'served model' in capsys.readouterr().err
