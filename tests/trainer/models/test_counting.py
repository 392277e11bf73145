"""Every model's parameter count, computed from its configuration alone, against the built
model's."""
import pytest

from trainer import models
from trainer.models import autoint, dcn_v2, deepfm, dnn, heads, mtt, resort
from helpers import TINY_CARDS, TINY_SPEC


PARAMETER_COUNTS = {
    'dnn': (dnn.DnnConfig(hidden_units=(32, 16)), dnn.parameter_count),
    'dnn_periodic': (dnn.DnnConfig(hidden_units=(32, 16), numeric_encoding='periodic',
                                   numeric_frequencies=4), dnn.parameter_count),
    'dcn_v2': (dcn_v2.DcnV2Config(projection_dim=4, hidden_units=(16,)),
               dcn_v2.parameter_count),
    'deepfm': (deepfm.DeepFmConfig(hidden_units=(16,)), deepfm.parameter_count),
    'autoint': (autoint.AutoIntConfig(head_dim=8, hidden_units=(16,)),
                autoint.parameter_count),
    'resort': (resort.ReSortConfig(), resort.parameter_count),
    'resort_mlp': (resort.ReSortConfig(mlp_units=(32, 16), bilinear=False),
                   resort.parameter_count),
    'mtt': (mtt.MttConfig(embedding_dim=16, hidden_units=(32,)), mtt.parameter_count),
    'mtt_skip': (mtt.MttConfig(embedding_dim=16, hidden_units=(32,), final_norm=False,
                               embedding_skip=True), mtt.parameter_count),
}


VARIANTS = {'dnn_periodic', 'resort_mlp', 'mtt_skip'}


@pytest.mark.parametrize('name', sorted(PARAMETER_COUNTS))
def test_parameter_count_matches_configuration(name):
  config, count = PARAMETER_COUNTS[name]
  model = models.build(name.split('_')[0] if name in VARIANTS else name, TINY_SPEC,
                       TINY_CARDS, config, heads.HeadConfig(tasks='primary'))
  assert model.core.count_params() == count(TINY_SPEC, TINY_CARDS, config)


def test_parameter_counts_cover_every_model():
  assert set(PARAMETER_COUNTS) - VARIANTS == set(models.MODELS)
