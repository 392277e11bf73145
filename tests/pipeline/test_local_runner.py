"""pipeline/local_runner.py's console summary: the Trainer's lines."""
from pipeline import local_runner


def _report(wide_fit):
  return {'pipeline': 'ctr-default', 'metrics': {'auc': 0.75},
          'trainer': {'model': 'dnn', 'parameters': 1000, 'epochs_run': 3,
                      'train_examples_per_second': 100.0, 'wide_fit': wide_fit,
                      'calibration': {'method': 'platt', 'tasks': {
                          'ctr': {'ece_before': 0.002, 'ece_after': 0.001}}}}}


def test_the_summary_says_what_the_wide_parts_backfit_did():
  kept = {'mode': 'backfit', 'eval_logloss_before': 0.0857, 'eval_logloss': 0.08372,
          'kept': True, 'steps': 4, 'seconds': 61.3}
  text = local_runner.format_report(_report(kept))
  assert ('     wide part: re-solved after training, val. logloss 0.08570 -> 0.08372 '
          '(kept; 5 fits, 61 s)') in text.splitlines()
  refused = dict(kept, eval_logloss=0.0857, kept=False, steps=0)
  assert '(not kept; 1 fits, 61 s)' in local_runner.format_report(_report(refused))
  # Nothing to say where the option is off, or the head gave the wide part no weight.
  for wide_fit in (None, {'mode': 'backfit', 'kept': False, 'skipped': 'scale 0.01'}):
    assert 'wide part' not in local_runner.format_report(_report(wide_fit))
