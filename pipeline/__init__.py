"""The TFX pipeline (``pipeline``), its configuration, input checks, Evaluator config and runners."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
