"""serving/deploy/render.py: the deployment files for the real tensorflow/serving, and
their flags against the embedded server's."""
import argparse
import os

import pytest
import yaml

from serving import config as cfg
from serving import server as server_module
from serving.deploy import render
from helpers import CTR_MODEL, REPO_ROOT


def test_deploy_files_render_and_match_the_embedded_flags(ctr, tmp_path):
  paths = render.render(str(tmp_path), render.pushed_models(str(ctr['work'] / 'serving')))
  config = cfg.read_model_server_config(paths['models.config'])
  assert [(m.name, m.base_path) for m in config.model_config_list.config] == [
      (CTR_MODEL, '/models/ctr')]
  assert cfg.BatchingParameters.from_text(open(paths['batching.config']).read()) == \
      render.PRODUCTION_BATCHING
  assert cfg.MonitoringConfig.from_text(open(paths['monitoring.config']).read()).prometheus_enable
  with pytest.raises(ValueError, match='no models'):
    render.render(str(tmp_path), [])
  # The real server's flags in docker-compose and Kubernetes are all flags the embedded
  # server takes: switching servers is a change of binary only.
  compose = yaml.safe_load(open(os.path.join(REPO_ROOT, 'serving/deploy/docker-compose.yml')))
  k8s = yaml.safe_load(open(os.path.join(REPO_ROOT, 'serving/deploy/kubernetes/deployment.yaml')))
  flag_sets = [compose['services']['tf-serving']['command'],
               k8s['spec']['template']['spec']['containers'][0]['args']]
  parser = argparse.ArgumentParser()
  server_module.add_arguments(parser)
  for flags in flag_sets:
    args = parser.parse_args(flags)
    assert args.model_config_file == '/config/models.config' and args.enable_batching
  kustomize = yaml.safe_load(open(os.path.join(REPO_ROOT, 'serving/deploy/kubernetes/'
                                                     'kustomization.yaml')))
  files = kustomize['configMapGenerator'][0]['files']
  assert sorted(os.path.basename(f) for f in files) == sorted(paths)
