"""Trainer: Keras models (``model``) and the TFX ``run_fn`` with its signatures (``task``)."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
