"""Trainer: Keras models (``model``) and the TFX ``run_fn`` with its signatures (``task``);
the GBDT baseline's ``run_fn`` (``gbdt``, LightGBM on the raw splits, tuned); AutoGraph's
rule for tf_keras (``autograph``)."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
