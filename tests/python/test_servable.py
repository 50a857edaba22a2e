"""kiln.Servable: the server's answers, bit for bit, from a DataFrame, a dict of arrays and a list
of dicts; numeric float64 columns handed over without a copy; the server's errors."""
import glob
import math
import os

import numpy as np
import pandas as pd
import pytest

import kiln
from conftest import BABYWEIGHT, EXACT

NUMERIC = ["mother_age", "mother_educ", "father_age", "prenatal_visits", "prenatal_start_month", "cigs_per_day",
           "drinks_per_week", "weight_pounds"]


def eval_frame():
    # float64 numbers parsed exactly as Kiln parses them (round_trip), categories as text.
    df = pd.read_csv(os.path.join(BABYWEIGHT, "data", "eval.csv"), dtype={c: "float64" for c in NUMERIC} | {
        "key": str, "is_male": str, "mother_race": str}, **EXACT)
    # Rows a client would send with missing values: a NaN number and a missing category.
    df.loc[1, "father_age"] = np.nan
    df.loc[2, "mother_race"] = None
    return df


def instances(df):
    out = []
    for row in df.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()
                    if k != "weight_pounds"})
    return out


def test_predictions_are_the_servers_bits(babyweight_model, server):
    df = eval_frame()
    model = kiln.Servable(babyweight_model[2])
    ours = model.predict(df)
    theirs = server.post("/v1/models/babyweight:predict", {"instances": instances(df)})
    served = np.array([p["predictions"] for p in theirs["predictions"]], dtype=np.float32)
    assert ours["predictions"].shape == (len(df), 1)
    assert ours["predictions"].dtype == np.float32
    # Bit for bit: the JSON numbers are the shortest text of each float32.
    assert np.array_equal(ours["predictions"].view(np.uint32), served.view(np.uint32))
    assert ours["key"] == list(df["key"])
    assert [p["key"] for p in theirs["predictions"]] == list(df["key"])


def test_a_dict_of_arrays_and_a_list_of_dicts_give_the_same_bits(babyweight_model):
    df = eval_frame()
    model = kiln.Servable(babyweight_model[2])
    from_frame = model.predict(df)["predictions"]
    from_dict = model.predict({c: df[c].to_numpy() for c in df.columns})["predictions"]
    from_rows = model.predict(instances(df))["predictions"]
    # Batches of any size: the kernels are row-invariant.
    in_small_batches = model.predict(df, batch_size=7)["predictions"]
    for other in (from_dict, from_rows, in_small_batches):
        assert np.array_equal(from_frame.view(np.uint32), other.view(np.uint32))
    # No key sent, none returned.
    assert "key" not in model.predict(df.drop(columns=["key"]))


def test_float64_columns_are_not_copied(babyweight_model):
    df = eval_frame()
    model = kiln.Servable(babyweight_model[2])
    cols = model.columns_for(df)
    for name in ["mother_age", "father_age", "cigs_per_day"]:
        assert np.shares_memory(cols[name], df[name].to_numpy()), name
    arrays = {c: df[c].to_numpy() for c in df.columns}
    assert np.shares_memory(model.columns_for(arrays)["mother_age"], arrays["mother_age"])
    # An int column is converted once (float64 is what the Transformer reads).
    ints = df.assign(mother_age=df["mother_age"].astype("int64"))
    converted = model.columns_for(ints)["mother_age"]
    assert converted.dtype == np.float64 and not np.shares_memory(converted, ints["mother_age"].to_numpy())
    assert np.array_equal(model.predict(ints)["predictions"], model.predict(df)["predictions"])


def test_bad_input_is_the_servers_error(babyweight_model):
    df = eval_frame().head(5)
    model = kiln.Servable(babyweight_model[2])
    with pytest.raises(kiln.KilnError, match="no column 'mother_age'"):
        model.predict(df.drop(columns=["mother_age"]))
    rows = instances(df)
    rows[3]["father_age"] = "forty"
    with pytest.raises(ValueError, match=r"rows\[3\].father_age: expected a number, got 'forty'"):
        model.predict(rows)
    with pytest.raises(TypeError, match="DataFrame, a dict of arrays or a list of dicts"):
        model.predict(42)
    with pytest.raises(kiln.KilnError, match="servable"):
        kiln.Servable(os.path.join(babyweight_model[1], "nowhere"))


def test_describes_itself(babyweight_model):
    model = kiln.Servable(babyweight_model[2])
    assert model.name == "babyweight" and model.version == 1 and model.device == "cpu"
    names = [c["name"] for c in model.inputs]
    assert "mother_age" in names and "key" in names
    assert {c["name"]: c["type"] for c in model.inputs}["mother_race"] == "string"
    assert "babyweight" in repr(model)


def test_on_the_simulated_device_the_bits_are_the_cpus(babyweight_model):
    df = eval_frame()
    cpu = kiln.Servable(babyweight_model[2]).predict(df)["predictions"]
    sim = kiln.Servable(babyweight_model[2], device="sim")
    assert sim.device == "sim"
    assert np.array_equal(sim.predict(df)["predictions"].view(np.uint32), cpu.view(np.uint32))
    with pytest.raises(kiln.KilnError, match="cuda|CUDA"):
        kiln.Servable(babyweight_model[2], device="cuda")


def test_a_classifier_answers_the_servers_classes(tmp_path):
    """A MULTICLASS head (mother_race from the other features): probabilities bit for bit,
    class ids and class names equal to the server's."""
    from conftest import Server, kiln as run_kiln

    data = os.path.join(BABYWEIGHT, "data")
    spec = tmp_path / "spec.pbtxt"
    spec.write_text('features { name: "mother_age" numeric { scaling: Z_SCORE } missing { kind: MEDIAN } }\n'
                    'features { name: "father_age" numeric { scaling: Z_SCORE } missing { kind: MEDIAN indicator: true } }\n'
                    'features { name: "is_male" categorical { vocabulary {} } }\n'
                    'label { column: "mother_race" type: MULTICLASS }\nkey_column: "key"\n')
    config = tmp_path / "train.pbtxt"
    config.write_text(f'data {{ csv {{ train_files: "{data}/train-*.csv" eval_files: "{data}/eval.csv" '
                      f'feature_spec_file: "{spec}" }} }}\n'
                      'model { layers { name: "male" inputs: "is_male" embedding { dim: 2 } }\n'
                      '  layers { name: "all" inputs: ["dense", "male"] concat {} }\n'
                      '  layers { name: "h" dense { units: 8 activation: RELU } }\n'
                      '  layers { name: "logits" dense { units: 3 } }\n  head { type: MULTICLASS } }\n'
                      'optimizer { type: ADAM learning_rate: 0.01 }\nepochs: 2\nbatch_size: 64\n'
                      f'output_dir: "{tmp_path / "run"}"\n')
    run_kiln("train", "--config", str(config))
    base = str(tmp_path / "models" / "race")
    run_kiln("export", "--config", str(config), "--model_base_path", base)
    df = eval_frame().drop(columns=["mother_race", "weight_pounds"])
    ours = kiln.Servable(base).predict(df)
    server = Server(base, str(tmp_path))
    try:
        theirs = server.post("/v1/models/race:predict", {"instances": instances(df)})["predictions"]
    finally:
        server.close()
    probs = np.array([p["probabilities"] for p in theirs], dtype=np.float32)
    assert ours["probabilities"].shape == (len(df), 3)
    assert np.array_equal(ours["probabilities"].view(np.uint32), probs.view(np.uint32))
    assert ours["class_ids"].dtype == np.int64
    assert ours["class_ids"][:, 0].tolist() == [p["class_ids"][0] for p in theirs]
    assert ours["classes"] == [p["classes"][0] for p in theirs]
    assert set(ours["classes"]) <= {"white", "black", "other"}


def test_precision_is_kiln_predicts(babyweight_model, tmp_path):
    """precision='bf16' gives `kiln predict --precision bf16`'s bits (and differs from fp32)."""
    import json
    from conftest import kiln as run_kiln

    df = eval_frame()
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in instances(df)))
    out = tmp_path / "out.jsonl"
    run_kiln("predict", "--model", babyweight_model[2], "--input", str(rows), "--output", str(out), "--precision", "bf16")
    theirs = np.array([json.loads(l)["predictions"] for l in out.read_text().splitlines()], dtype=np.float32)
    model = kiln.Servable(babyweight_model[2], precision="bf16")
    assert model.precision == "bf16"
    ours = model.predict(df)["predictions"]
    assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
    assert not np.array_equal(ours, kiln.Servable(babyweight_model[2]).predict(df)["predictions"])
    with pytest.raises(kiln.KilnError, match="choose default, fp32, tf32 or bf16"):
        kiln.Servable(babyweight_model[2], precision="fp16")
