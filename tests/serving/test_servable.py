"""serving/servable.py: concurrent Session runs at mixed batch sizes in the process that
imported TensorFlow."""

from serving import servable as servable_module
from helpers import CTR_MODEL, hammer_mixed_batches


def test_concurrent_mixed_batch_sizes_in_process(ctr):
  # The fixture's server shares this process's TensorFlow. Where that was imported with
  # oneDNN on (TensorFlow's default), the servable serializes model runs.
  unloaded = servable_module.Servable(CTR_MODEL, 1, str(ctr['base'] / '1'))
  assert (unloaded._run_lock is servable_module._ONEDNN_RUN_LOCK) == \
      servable_module.onednn_enabled()
  assert hammer_mixed_batches(f'127.0.0.1:{ctr["server"].port}', ctr) > 20
