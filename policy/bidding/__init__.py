"""Bidding in second-price auctions under a per-episode budget (docs/BIDDING.md).

* :mod:`~policy.bidding.auctions`: auction logs (the RLB iPinYou files, generated data)
  and the budget.
* :mod:`~policy.bidding.bidders`: constant, Lin and the Lagrangian pacers (dual step, PID;
  CPC cap, ROI floor; Thompson-sampling calibration).
* :mod:`~policy.bidding.replay`: the vectorised second-price replay.
* :mod:`~policy.bidding.hindsight`: the hindsight LP optimum, the upper bound.
* :mod:`~policy.bidding.tuning`, :mod:`~policy.bidding.evaluate`: validation tuning and
  the replay experiment of one campaign and budget.
* :mod:`~policy.bidding.closed_loop`: the pacer on pCTRs served over gRPC.
* :mod:`~policy.bidding.cli`: ``python -m policy bid-sim``.
"""
