"""trainer/models/__init__.py, the model registry: an unknown model or setting is named."""
import pytest

from trainer import models
from trainer.models import heads


def test_unknown_settings_are_named():
  with pytest.raises(ValueError, match="unknown setting.*'depth'"):
    models.model_config('dnn', {'depth': 3})
  with pytest.raises(ValueError, match='unknown model'):
    models.model_config('xgboost')
  with pytest.raises(ValueError, match='unknown task layout'):
    heads.HeadConfig(tasks='some')


