"""serving/config.py: models.config, batching and monitoring files parsed, and their
errors."""
import pytest

from serving import config as cfg
from serving import errors


def test_config_parsing_and_errors(tmp_path):
  text = cfg.model_server_config_text({'a': '/m/a', 'b': '/m/b'}, {'a': {'stable': 3}}, 2)
  parsed = cfg.parse_model_server_config(text)
  assert [m.name for m in parsed.model_config_list.config] == ['a', 'b']
  assert parsed.model_config_list.config[0].version_labels['stable'] == 3
  assert cfg.aspired_versions(parsed.model_config_list.config[0], [5, 1, 3]) == [3, 5]
  for bad, message in [
      ('model_config_list { config { name: "a" } }', 'has no base_path'),
      ('model_config_list { config { name: "a" base_path: "/x" } '
       'config { name: "a" base_path: "/y" } }', 'multiple times'),
      ('custom_model_config {}', 'only supports model_config_list'),
      ('model_config_list { bogus: 1 }', 'Invalid model server config')]:
    with pytest.raises(errors.ServingError, match=message):
      cfg.parse_model_server_config(bad)
  b = cfg.BatchingParameters.from_text(cfg.BatchingParameters(
      max_batch_size=64, allowed_batch_sizes=(8, 64)).to_text())
  assert b.max_batch_size == 64 and b.allowed_batch_sizes == (8, 64)
  with pytest.raises(errors.ServingError, match='must be equal to the maximum'):
    cfg.BatchingParameters(max_batch_size=64, allowed_batch_sizes=(8, 32))
  with pytest.raises(errors.ServingError, match='no field named "max_batchsize"'):
    cfg.BatchingParameters.from_text('max_batchsize { value: 3 }')
  assert cfg.MonitoringConfig.from_text('prometheus_config { enable: true path: "/m" }'
                                        ).prometheus_path == '/m'
