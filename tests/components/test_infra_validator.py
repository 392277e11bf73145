"""components/infra_validator.py: a good model is blessed, a broken one refused."""
import os
import shutil

from components import infra_validator
from transform import local


def test_infra_validation_blesses_a_good_model_and_refuses_a_broken_one(ctr, tmp_path):
  examples = [ex for ex in local.serialize_examples(ctr['test'].slice(0, 8), ctr['spec'])]
  report = infra_validator.validate(str(ctr['base'] / '1'), examples)
  assert report['blessed'], report
  assert {'probability', 'classify', 'regress'} <= set(report['checked'])
  broken = tmp_path / 'broken'
  shutil.copytree(ctr['base'] / '1', broken)
  (broken / 'saved_model.pb').write_bytes(b'\x08garbage')
  report = infra_validator.validate(str(broken), examples)
  assert not report['blessed'] and 'did not load' in report['reason']
  warm = infra_validator.write_warmup(str(tmp_path / 'm'), [b'x'])
  assert warm.endswith(os.path.join('assets.extra', 'tf_serving_warmup_requests'))
