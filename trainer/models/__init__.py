"""The model zoo: each module builds a compiled tf_keras model from a spec."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
