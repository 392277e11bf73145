"""Feature spec (``feature_spec``) and the Transform ``preprocessing_fn`` (``preprocessing``)."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
