"""policy/bidding/evaluate.py: pCTR recalibration, and the replay on iPinYou campaign 2997
against the RLB paper."""
import numpy as np
import pytest

from policy.bidding import auctions as auc
from policy.bidding import cli, evaluate

from helpers import shared_data


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
