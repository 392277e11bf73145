"""serving/signatures.py: the exported model's names, defined once and read everywhere."""
import subprocess
import sys

from pipeline import configs
from serving import signatures as sig


def test_names_are_the_ones_clients_already_send():
  # What a TF Serving client names on the wire: a rename here breaks every one of them
  # (tests/trainer/test_task.py checks that the export writes exactly these signatures).
  import tensorflow as tf
  assert sig.DEFAULT == tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
  assert (sig.TRANSFORM_FEATURES, sig.PREDICT_RAW, sig.CLASSIFICATION, sig.REGRESSION,
          sig.LAST_HIDDEN) == ('transform_features', 'predict_raw', 'classification',
                               'regression', 'last_hidden')
  assert (sig.EXAMPLES, sig.PROBABILITY, sig.HIDDEN) == ('examples', 'probability',
                                                         'last_hidden')
  assert sig.probability() == 'probability'
  assert sig.probability('cvr') == 'probability_cvr'


def test_the_module_imports_nothing():
  code = ('import sys; before = set(sys.modules); import serving.signatures; '
          'new = set(sys.modules) - before - {"serving", "serving.signatures"}; '
          'print(sorted(m for m in new if not m.startswith("_")))')
  out = subprocess.run([sys.executable, '-c', code], cwd=configs.REPO_ROOT,
                       capture_output=True, text=True, check=True).stdout.strip()
  assert out == '[]'
