"""Budget-constrained bidding: the iPinYou reader and its errors, the hindsight LP, the
second-price replay, the pacers and their constraints, the replay against the RLB paper's
numbers on campaign 2997, the bid-sim CLI and the closed loop over gRPC."""
import json
import os
import shutil

import numpy as np
import pytest
from scipy.optimize import linprog

from policy.bidding import auctions as auc
from policy.bidding import cli, evaluate, hindsight, rlb, tuning
from policy.bidding.bidders import ConstantBid, LagrangianBid, LinearBid
from policy.bidding.replay import replay

from helpers import shared_data


def _write(path, episodes, horizon=4):
  with open(path, 'w') as f:
    f.write(f'100\t{horizon}\n')
    for i, ep in enumerate(episodes):
      f.write(f'{i}\n')
      for line in ep:
        f.write(line + '\n')
  return str(path)


def _synthetic(episodes=40, horizon=400, seed=0):
  rng = np.random.default_rng(seed)
  pctr = np.clip(rng.lognormal(np.log(0.004), 0.8, (episodes, horizon)), 0, 1)
  price = np.round(rng.lognormal(np.log(60), 0.6, (episodes, horizon)) * (pctr / 0.004) ** 0.3)
  click = (rng.random((episodes, horizon)) < pctr).astype(np.int8)
  return auc.Auctions(click, price, pctr, np.ones_like(click, bool), 'synthetic')


def test_reader_parses_episodes_and_short_last_episode(tmp_path):
  path = _write(tmp_path / 'c.validation.txt', [
      ['0\t10\t0.01', '1\t20\t0.5', '0\t5\t0.2', '0\t0\t0.0'], ['1\t7\t0.3']])
  a = auc.read_ipinyou(path)
  assert (a.episodes, a.horizon, a.count) == (2, 4, 5)
  assert a.valid[1].tolist() == [True, False, False, False]
  assert a.price[0].tolist() == [10, 20, 5, 0] and a.click[1, 0] == 1
  assert a.name == 'c'


@pytest.mark.parametrize('line, message', [
    ('0\t10', 'malformed auction line'),
    ('0\tten\t0.1', 'malformed auction line'),
    ('0\t-3\t0.1', 'negative market price'),
    ('0\t10\t1.5', 'pCTR outside [0, 1]'),
    ('2\t10\t0.5', 'click not 0 or 1'),
])
def test_reader_names_the_bad_line(tmp_path, line, message):
  path = _write(tmp_path / 'bad.txt', [['0\t1\t0.1', '0\t2\t0.1'], ['0\t3\t0.2', line]])
  with pytest.raises(auc.AuctionDataError, match=rf'bad.txt:7: {message}'.replace('[', r'\[')
                     .replace(']', r'\]')):
    auc.read_ipinyou(path)


def test_reader_rejects_bad_header_and_long_episode(tmp_path):
  (tmp_path / 'h.txt').write_text('oops\n0\n0\t1\t0.1\n')
  with pytest.raises(auc.AuctionDataError, match='h.txt:1'):
    auc.read_ipinyou(str(tmp_path / 'h.txt'))
  # A blank line inside an episode is a malformed auction; blank lines at the end are not.
  path = _write(tmp_path / 'blank.txt', [['0\t1\t0.1', '', '0\t2\t0.1'], ['0\t3\t0.1', '', '']])
  with pytest.raises(auc.AuctionDataError, match=r"blank.txt:4: malformed auction line ''"):
    auc.read_ipinyou(path)
  path = _write(tmp_path / 'tail.txt', [['0\t1\t0.1'], ['0\t3\t0.1', '', '']])
  assert auc.read_ipinyou(path).count == 2
  path = _write(tmp_path / 'long.txt', [['0\t1\t0.1'] * 3], horizon=2)
  with pytest.raises(auc.AuctionDataError, match='more than the header'):
    auc.read_ipinyou(path)


def test_budget_and_ratio_errors():
  assert auc.budget(1 / 32, 1000, 63.0177) == 1969.0     # RLB's int(c0 T mean price)
  for bad in (0, -1 / 16, float('nan')):
    with pytest.raises(auc.AuctionDataError, match='c0 must be > 0'):
      auc.budget(bad, 1000, 60)
  with pytest.raises(auc.AuctionDataError, match='must be > 0'):
    auc.budget(1e-9, 1000, 60)
  assert auc.parse_ratio('1/16') == 0.0625 and auc.parse_ratio('0.5') == 0.5
  with pytest.raises(auc.AuctionDataError, match='not a ratio'):
    auc.parse_ratio('a/b')
  a = _synthetic(2, 10)
  with pytest.raises(auc.AuctionDataError, match='budget must be > 0'):
    replay(a, ConstantBid(10), 0.0)
  with pytest.raises(auc.AuctionDataError, match='pCTR outside'):
    auc.Auctions(a.click, a.price, a.pctr + 2, a.valid)
  with pytest.raises(auc.AuctionDataError, match='negative'):
    auc.Auctions(a.click, -a.price, a.pctr, a.valid)


def test_hindsight_is_the_lp_optimum():
  a = _synthetic(6, 30, seed=3)
  budget = 400.0
  h = hindsight.optimum(a, budget)
  for e in range(a.episodes):
    lp = linprog(-a.pctr[e], A_ub=a.price[e][None], b_ub=[budget], bounds=(0, 1))
    assert h.expected_clicks[e] == pytest.approx(-lp.fun, rel=1e-9)
    assert h.cost[e] == pytest.approx(budget)
  # A slack budget buys every auction; its threshold is infinite.
  rich = hindsight.optimum(a, 1e9)
  np.testing.assert_allclose(rich.expected_clicks, a.pctr.sum(axis=1))
  assert np.all(np.isinf(rich.ratio))


def test_second_price_replay_by_hand():
  a = auc.Auctions(np.array([[1, 0, 1, 1]], np.int8), np.array([[5., 10., 4., 3.]]),
                   np.array([[.1, .1, .1, .1]]), np.ones((1, 4), bool))
  o = replay(a, ConstantBid(5.0), budget=9.0)
  # Wins the tie at 5 (pays 5), loses 10, wins 4 (pays 4), then the budget is gone.
  assert (o.wins[0], o.cost[0], o.clicks[0]) == (2, 9.0, 2)
  t = o.totals()
  assert t['win_rate'] == 0.5 and t['cpm'] == 4.5 and t['ecpc'] == pytest.approx(9 / 1000 / 2)


def test_no_bidder_overspends_even_bidding_huge():
  a = _synthetic(20, 300)
  for bidder in (ConstantBid(1e9), LinearBid(1e9, 0.004),
                 LagrangianBid(1e9, u0=-20.0, eta=0.0)):
    o = replay(a, bidder, 500.0)
    assert np.all(o.cost <= 500.0 + 1e-9) and o.totals()['overspent_episodes'] == 0


@pytest.mark.parametrize('pacing', ['dual', 'pid'])
def test_pacer_spends_evenly_and_nears_the_optimum(pacing):
  val, test = _synthetic(40, 400, seed=1), _synthetic(40, 400, seed=2)
  budget = auc.budget(1 / 16, 400, val.mean_price())
  bidder = tuning.tune_lagrangian(val, budget, value=15000.0, pacing=pacing)
  o = replay(test, bidder, budget, trace=True)
  frac = o.spend / budget
  assert frac[:, -1].mean() > 0.95                    # the budget is used
  assert 0.35 < frac[:, 199].mean() < 0.65            # not exhausted early: on pace
  assert frac[:, 99].mean() < 0.4
  best = hindsight.optimum(test, budget).expected_clicks.sum()
  assert o.expected_clicks.sum() <= best + 1e-9
  assert o.expected_clicks.sum() > 0.9 * best
  lin = replay(test, tuning.tune_linear(val, budget, 0.004), budget)
  assert o.expected_clicks.sum() > lin.expected_clicks.sum()


def test_carried_start_follows_traffic_that_differs_from_tuning():
  """Test prices 1.6 times the tuning episodes': the tuned start bids too much at first in
  every episode. Carrying the start across episodes learns the test multiplier, so it
  ends nearer the test episodes' hindsight multiplier and wins more expected clicks."""
  import dataclasses
  val, test = _synthetic(40, 400, seed=1), _synthetic(60, 400, seed=2)
  test = auc.Auctions(test.click, np.round(test.price * 1.6), test.pctr, test.valid, 'drift')
  budget = auc.budget(1 / 16, 400, val.mean_price())
  fixed = tuning.tune_lagrangian(val, budget, value=15000.0)
  carried = dataclasses.replace(fixed, carry=True)
  assert carried.wave == 10 and fixed.wave is None
  a, b = replay(test, fixed, budget), replay(test, carried, budget)
  assert b.expected_clicks.sum() > a.expected_clicks.sum()
  assert b.cost.max() <= budget + 1e-9
  target = np.median(np.log(15000.0 * hindsight.optimum(test, budget).ratio))
  assert abs(carried.start_u() - target) < 0.5 * abs(fixed.u0 - target)
  assert dataclasses.replace(carried).start_u() == fixed.u0   # a fresh copy starts over
  with pytest.raises(ValueError, match='carry_wave'):
    LagrangianBid(1.0, carry=True, carry_wave=0)


@pytest.mark.parametrize('method', ['platt', 'isotonic'])
def test_recalibrated_pctrs_fit_held_out_clicks_better(method):
  """Clicks drawn from sigmoid(1.8 logit(pCTR) + 3.5): the logs' pCTRs are under-dispersed
  (the slope iPinYou 2261's validation file fits is 1.7). A calibration fitted on the
  tuning episodes' clicks lowers the held-out log loss, keeps the order of the pCTRs, and
  leaves padding at 0."""
  def make(seed, episodes):
    rng = np.random.default_rng(seed)
    pctr = np.clip(rng.lognormal(np.log(0.004), 0.8, (episodes, 500)), 1e-6, 0.5)
    z = 1.8 * np.log(pctr / (1 - pctr)) + 3.5
    click = (rng.random(pctr.shape) < 1 / (1 + np.exp(-z))).astype(np.int8)
    valid = np.ones_like(click, bool)
    valid[-1, 300:] = False                   # a short last episode
    pctr[~valid], click[~valid] = 0.0, 0
    truth = auc.Auctions(click, np.full(pctr.shape, 50.0),
                         np.where(valid, 1 / (1 + np.exp(-z)), 0), valid, 'truth')
    return auc.Auctions(click, np.full(pctr.shape, 50.0), pctr, valid, f'seed{seed}'), truth

  def logloss(a):
    p, y = np.clip(a.pctr[a.valid], 1e-9, 1 - 1e-9), a.click[a.valid]
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

  (val, _), (test, truth) = make(0, 200), make(1, 200)
  cv, ct = evaluate.recalibrate(val, test, method)
  # Most of the raw pCTRs' excess log loss over the true probabilities' is gone.
  excess_raw, excess_cal = logloss(test) - logloss(truth), logloss(ct) - logloss(truth)
  assert excess_cal < 0.3 * excess_raw, (excess_cal, excess_raw)
  assert abs(ct.pctr[ct.valid].mean() / truth.pctr[truth.valid].mean() - 1) < 0.15
  assert np.all(ct.pctr[~ct.valid] == 0) and np.all(cv.price == val.price)
  order = np.argsort(test.pctr[test.valid], kind='stable')
  assert np.all(np.diff(ct.pctr[test.valid][order]) >= -1e-12)
  same = evaluate.recalibrate(val, test, 'none')
  assert same[0] is val and same[1] is test
  with pytest.raises(ValueError, match='unknown pCTR calibration'):
    evaluate.recalibrate(val, test, 'beta')
  with pytest.raises(ValueError, match='no clicks'):
    evaluate.recalibrate(auc.Auctions(val.click * 0, val.price, val.pctr, val.valid, 'v'),
                         test, method)
  assert cli.parser().get_default('pctr_calibration') == 'none'
  assert set(evaluate.PCTR_CALIBRATIONS) == {
      a for a in cli.parser()._option_string_actions['--pctr-calibration'].choices}


def test_cpc_cap_and_roi_hold_the_cost_per_click():
  val, test = _synthetic(40, 400, seed=1), _synthetic(40, 400, seed=2)
  budget = auc.budget(1 / 4, 400, val.mean_price())
  free = replay(test, tuning.tune_lagrangian(val, budget, 15000.0), budget)
  free_cpc = free.cost.sum() / free.expected_clicks.sum()
  cap = 0.6 * free_cpc
  capped = replay(test, tuning.tune_lagrangian(val, budget, 15000.0, max_cpc=cap), budget)
  assert capped.cost.sum() / capped.expected_clicks.sum() <= 1.05 * cap
  roi = replay(test, tuning.tune_lagrangian(val, budget, 15000.0, min_roi=15000.0 / cap),
               budget)
  assert roi.cost.sum() / roi.expected_clicks.sum() <= 1.05 * cap
  with pytest.raises(ValueError, match='not both'):
    LagrangianBid(1.0, max_cpc=1.0, min_roi=1.0)


def test_surplus_objective_never_bids_above_value():
  a = _synthetic(10, 300)
  b = LagrangianBid(5000.0, u0=0.0, eta=0.05, objective='surplus')
  o = replay(a, b, 1e7, trace=True)                   # budget slack: lambda stays 0
  assert np.nanmin(o.multiplier) >= 0.0
  with pytest.raises(ValueError, match='objective'):
    LagrangianBid(1.0, objective='profit')


def test_replay_on_ipinyou_2997_against_the_rlb_paper():
  data = shared_data('ipinyou_rlbdp')
  val, test, note = evaluate.splits(data, '2997')
  assert note == 'validation -> test' and test.count == 156063
  info = auc.campaign_info(data, '2997')
  rows, _ = evaluate.run(val, test, info, 1 / 32, ['lin', 'lagrangian', 'hindsight'])
  by = {r['policy']: r for r in rows}
  # Lin tuned as the paper tunes it reproduces the paper's own Lin row on this file
  # (ECML 2016 README: 26743 impressions, 63 clicks, cost 163300): the replay, the
  # budget and the second-price rules are the paper's.
  assert (by['lin']['impressions'], by['lin']['clicks'], by['lin']['cost']) == (26743, 63, 163300)
  rlb = {r['policy']: r for r in evaluate.rlb_reference(data)}
  assert rlb['RLB paper: rlb']['clicks'] == 78
  assert by['lagrangian']['clicks'] >= rlb['RLB paper: rlb']['clicks']
  assert by['lagrangian']['of_hindsight'] >= 0.9
  assert all(r['overspent_episodes'] == 0 for r in rows)


def test_rlb_value_function_is_the_bellman_recursion():
  pmf = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
  theta = 0.4
  V = rlb.value_function(6, 9, pmf, np.array([theta]))
  W = np.zeros((7, 10))
  for t in range(1, 7):
    for b in range(10):
      W[t, b] = max(sum(pmf[d] * (theta + W[t - 1, b - d]) for d in range(min(a, b) + 1))
                    + sum(pmf[d] for d in range(min(a, b) + 1, 5)) * W[t - 1, b]
                    for a in range(5))
  np.testing.assert_allclose(V, W, atol=1e-12)
  # With a distribution of theta, the max over bids sits inside the expectation.
  thetas = np.array([0.1, 0.5, 0.9])
  V = rlb.value_function(4, 6, pmf, thetas, grid=200_000)
  W = np.zeros((5, 7))
  for t in range(1, 5):
    for b in range(7):
      W[t, b] = W[t - 1, b] + np.mean([max(sum(pmf[d] * (x + W[t - 1, b - d] - W[t - 1, b])
                                               for d in range(min(a, b) + 1)) for a in range(5))
                                       for x in thetas])
  np.testing.assert_allclose(V, W, atol=1e-6)


def test_rlb_reproduces_the_papers_row_and_the_pacer_matches_it():
  """Our RLB, set up as the paper's code is, gives the paper's 2997 row to the unit."""
  data = shared_data('ipinyou_rlbdp')
  val, test, _ = evaluate.splits(data, '2997')
  info = auc.campaign_info(data, '2997')
  rows, _ = evaluate.run(val, test, info, 1 / 32, ['lagrangian', 'rlb'], data_dir=data)
  by = {r['policy']: r for r in rows}
  paper = {r['policy']: r for r in evaluate.rlb_reference(data)}['RLB paper: rlb']
  assert (by['rlb']['impressions'], by['rlb']['clicks'], by['rlb']['cost']) == (
      paper['impressions'], paper['clicks'], paper['cost']) == (39680, 78, 304375)
  assert by['lagrangian']['clicks'] >= by['rlb']['clicks']
  assert by['lagrangian']['expected_clicks'] >= by['rlb']['expected_clicks']


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
  _write(folder / 'validation' / '7.validation.txt', [['0\t1\t0.1', '0\t1\tbad']])
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
