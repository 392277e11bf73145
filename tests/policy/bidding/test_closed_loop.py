"""policy/bidding/closed_loop.py: the bidder paced on pCTRs served over gRPC."""
import os
import shutil

from policy.bidding import cli


def test_closed_loop_over_grpc(small_dnn, tmp_path, capsys):
  """pCTRs from the embedded server over TF Serving's gRPC API drive the pacer."""
  from policy.bidding import closed_loop
  from serving import config as cfg
  from serving.client import PredictionClient
  from serving.core import ServerOptions
  from serving.server import ModelServer
  model_dir, _ = small_dnn
  base = tmp_path / 'ctr'
  shutil.copytree(model_dir, base / '1')
  server = ModelServer(ServerOptions(model_config=cfg.single_model_config('ctr', str(base)),
                                     file_system_poll_wait_seconds=0),
                       port=0, rest_api_port=-1, host='127.0.0.1').start()
  try:
    with PredictionClient(f'127.0.0.1:{server.port}', 'ctr') as client:
      res = closed_loop.run(client, rows=4000, c0=1 / 8, horizon=500, request_size=250)
    t = res.totals()
    assert t['auctions'] == 2000 and res.requests == 8
    assert 0 < t['cost'] <= t['budget'] and t['overspent_episodes'] == 0
    assert t['cost'] > 0.8 * t['budget']
    assert t['expected_clicks'] <= t['hindsight_expected_clicks'] + 1e-9
    assert t['expected_clicks'] > 0.7 * t['hindsight_expected_clicks']
    rc = cli.main(['--server', f'127.0.0.1:{server.port}', '--model', 'ctr', '--rows', '4000',
                   '--c0', '1/8', '--out', str(tmp_path / 'out')])
    assert rc == 0 and 'closed loop' in capsys.readouterr().out
    assert os.path.getsize(tmp_path / 'out' / 'spend.png') > 1000
  finally:
    server.stop()
