"""The exported model's signatures and their inputs and outputs, by name.

The contract between the Trainer's export (:func:`trainer.export.export_serving_model`,
which documents what each signature computes) and everything that serves or reads the
model: the embedded server, the clients, batch scoring, the Evaluator, the
InfraValidator, off-policy evaluation, the bandits and the benchmarks. It imports
nothing, so any layer can read it. TensorFlow's own constants name the rest: the
signatures' method names (``tf.saved_model.PREDICT_METHOD_NAME``, ``CLASSIFY_METHOD_NAME``,
``REGRESS_METHOD_NAME``) and the Classify and Regress signatures' inputs and outputs
(``tf.saved_model.CLASSIFY_INPUTS``, ``CLASSIFY_OUTPUT_CLASSES``,
``CLASSIFY_OUTPUT_SCORES``, ``REGRESS_INPUTS``, ``REGRESS_OUTPUTS``).
"""

from __future__ import annotations

# Signature keys. DEFAULT is TensorFlow's tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
# (tests/serving/test_signatures.py checks that they agree).
DEFAULT = 'serving_default'          # serialized tf.Examples -> probabilities
TRANSFORM_FEATURES = 'transform_features'   # serialized tf.Examples -> transformed features
PREDICT_RAW = 'predict_raw'          # one tensor per raw feature -> probabilities
CLASSIFICATION = 'classification'    # TF Serving's Classify API
REGRESSION = 'regression'            # TF Serving's Regress API
LAST_HIDDEN = 'last_hidden'          # serialized tf.Examples -> the representation

# The input of DEFAULT, TRANSFORM_FEATURES and LAST_HIDDEN: serialized tf.Examples.
EXAMPLES = 'examples'

# Outputs.
PROBABILITY = 'probability'          # the primary task's calibrated probability
HIDDEN = 'last_hidden'               # LAST_HIDDEN's representation [batch, k]


def probability(task: str | None = None) -> str:
  """The output holding task ``task``'s probability (``probability_<task>``, as every
  task of a multi-task model has), or the primary task's (``probability``) for None."""
  return PROBABILITY if task is None else f'{PROBABILITY}_{task}'

