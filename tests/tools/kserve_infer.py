"""Calls a Kiln server's KServe v2 endpoint with tritonclient.http at its default settings
(binary tensor data both ways) and prints the outputs as JSON, for serve_e2e_test.

usage: kserve_infer.py URL MODEL ROWS_JSON   (ROWS_JSON: {"feature": [values...], ...})
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient

url, model, rows_json = sys.argv[1], sys.argv[2], sys.argv[3]
rows = json.loads(rows_json)
client = httpclient.InferenceServerClient(url=url)
assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
meta = client.get_model_metadata(model)
inputs = []
for spec in meta["inputs"]:
    name = spec["name"]
    if name not in rows:
        continue
    values = rows[name]
    if spec["datatype"] == "BYTES":
        arr = np.array([v.encode() for v in values], dtype=np.object_).reshape(-1, 1)
    else:
        arr = np.array(values, dtype=np.float32).reshape(-1, 1)
    tensor = httpclient.InferInput(name, list(arr.shape), spec["datatype"])
    tensor.set_data_from_numpy(arr)  # binary_data=True by default
    inputs.append(tensor)
result = client.infer(model, inputs)
out = {}
for spec in meta["outputs"]:
    value = result.as_numpy(spec["name"])
    if value.dtype == np.object_:
        out[spec["name"]] = [v.decode() for v in value.reshape(-1)]
    else:
        out[spec["name"]] = [float(v) for v in value.reshape(-1)]
print(json.dumps(out))
