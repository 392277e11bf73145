"""``python -m policy <command>``: the decision layer's command line.

* ``ope``: estimate a policy's value from logs (:mod:`policy.ope.cli`).
* ``bid-sim``: replay a budget-paced bidder on iPinYou auctions, or run it closed-loop
  against a served model (:mod:`policy.bidding.cli`).
"""
import sys


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  commands = {'ope': 'policy.ope.cli', 'bid-sim': 'policy.bidding.cli'}
  if not argv or argv[0] not in commands:
    print(__doc__.strip(), file=sys.stderr)
    return 2
  import importlib
  return importlib.import_module(commands[argv[0]]).main(argv[1:])


if __name__ == '__main__':
  sys.exit(main())
