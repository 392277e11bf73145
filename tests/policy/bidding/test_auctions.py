"""policy/bidding/auctions.py: the iPinYou reader and its errors, budgets and ratios."""
import pytest

from policy.bidding import auctions as auc
from policy.bidding.bidders import ConstantBid
from policy.bidding.replay import replay

from helpers import synthetic_auctions, write_auction_log


def test_reader_parses_episodes_and_short_last_episode(tmp_path):
  path = write_auction_log(tmp_path / 'c.validation.txt', [
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
  path = write_auction_log(tmp_path / 'bad.txt', [['0\t1\t0.1', '0\t2\t0.1'], ['0\t3\t0.2', line]])
  with pytest.raises(auc.AuctionDataError, match=rf'bad.txt:7: {message}'.replace('[', r'\[')
                     .replace(']', r'\]')):
    auc.read_ipinyou(path)


def test_reader_rejects_bad_header_and_long_episode(tmp_path):
  (tmp_path / 'h.txt').write_text('oops\n0\n0\t1\t0.1\n')
  with pytest.raises(auc.AuctionDataError, match='h.txt:1'):
    auc.read_ipinyou(str(tmp_path / 'h.txt'))
  # A blank line inside an episode is a malformed auction; blank lines at the end are not.
  path = write_auction_log(tmp_path / 'blank.txt',
                           [['0\t1\t0.1', '', '0\t2\t0.1'], ['0\t3\t0.1', '', '']])
  with pytest.raises(auc.AuctionDataError, match=r"blank.txt:4: malformed auction line ''"):
    auc.read_ipinyou(path)
  path = write_auction_log(tmp_path / 'tail.txt', [['0\t1\t0.1'], ['0\t3\t0.1', '', '']])
  assert auc.read_ipinyou(path).count == 2
  path = write_auction_log(tmp_path / 'long.txt', [['0\t1\t0.1'] * 3], horizon=2)
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
  a = synthetic_auctions(2, 10)
  with pytest.raises(auc.AuctionDataError, match='budget must be > 0'):
    replay(a, ConstantBid(10), 0.0)
  with pytest.raises(auc.AuctionDataError, match='pCTR outside'):
    auc.Auctions(a.click, a.price, a.pctr + 2, a.valid)
  with pytest.raises(auc.AuctionDataError, match='negative'):
    auc.Auctions(a.click, -a.price, a.pctr, a.valid)
