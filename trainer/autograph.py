"""AutoGraph leaves tf_keras's own code unconverted, as TensorFlow has it leave Keras's.

AutoGraph converts the Python code that a traced function reaches, except in the modules
of its do-not-convert rules (``tensorflow.python.autograph.core.config``), which name
``tensorflow`` and ``keras`` but not ``tf_keras``: the package Keras 2 moved to, which
TFX 1.16 needs (``TF_USE_LEGACY_KERAS=1``). So every trace of a model with a layer of our
own (whose ``call`` Keras converts, as it does any subclassed layer's) also converted
tf_keras's ``Layer.__call__`` and what it calls, once per layer, and ``model.fit``
converted Keras's train and test steps, optimiser and metrics: most of the Trainer's
time outside the training steps themselves (``docs/BENCHMARKS.md``, the main job's A/B).

:func:`leave_tf_keras_unconverted` adds the rule TensorFlow has for ``keras`` for
``tf_keras`` too. tf_keras is written to run unconverted (as ``keras``, it always did),
and the code it calls back (our layers' ``call``) is still converted, so a graph's ops,
and a seeded run's results, are the same. There is no public API for the rule list,
hence the module attribute; :func:`is_converted` is how the tests check that it holds.
"""

from __future__ import annotations

TF_KERAS = 'tf_keras'


def leave_tf_keras_unconverted() -> None:
  """Adds a do-not-convert rule for ``tf_keras`` to AutoGraph's rules (once)."""
  # pylint: disable=g-direct-tensorflow-import
  from tensorflow.python.autograph.core import config, config_lib
  rules = config.CONVERSION_RULES
  if any(isinstance(r, config_lib.DoNotConvert) and r.matches(TF_KERAS) for r in rules):
    return
  config.CONVERSION_RULES = (config_lib.DoNotConvert(TF_KERAS),) + tuple(rules)


def is_converted(fn) -> bool:
  """Whether AutoGraph would convert ``fn`` when traced code calls it."""
  # pylint: disable=g-direct-tensorflow-import
  from tensorflow.python.autograph.impl import conversion
  return not conversion.is_allowlisted(fn)
