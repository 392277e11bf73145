"""serving/server.py: python -m serving serve turns oneDNN off and survives concurrent load
at mixed batch sizes."""
import json
import os
import subprocess
import sys
import time

from serving.client import PredictionClient
from serving.errors import ServingError
from helpers import CTR_MODEL, REPO_ROOT, free_port, hammer_mixed_batches


def test_served_process_turns_onednn_off_and_survives_concurrent_load(ctr, tmp_path):
  port, rest = free_port(), free_port()
  log_path = tmp_path / 'server.log'
  env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(
        [sys.executable, '-m', 'serving', 'serve', f'--port={port}',
         f'--rest_api_port={rest}', f'--model_name={CTR_MODEL}',
         f'--model_base_path={ctr["base"]}', '--host=127.0.0.1', '--enable_batching'],
        cwd=REPO_ROOT, env=env, stderr=log)
  try:
    client = PredictionClient(f'127.0.0.1:{port}', CTR_MODEL, timeout=5)
    end = time.time() + 120
    while True:
      assert proc.poll() is None, log_path.read_text()[-3000:]
      try:
        if client.status().model_version_status[0].state == 30:   # AVAILABLE
          break
      except ServingError:
        pass
      assert time.time() < end, 'the server did not load the model in 120 s'
      time.sleep(0.5)
    calls = hammer_mixed_batches(f'127.0.0.1:{port}', ctr)
    assert calls > 20 and proc.poll() is None, log_path.read_text()[-3000:]
    started = [json.loads(line) for line in open(log_path)
               if line.startswith('{') and '"server_started"' in line]
    assert started and started[0]['onednn'] is False
  finally:
    proc.terminate()
    proc.wait(30)
