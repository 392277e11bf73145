"""Reusable tf_keras layers of the model zoo (one concept per module)."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
