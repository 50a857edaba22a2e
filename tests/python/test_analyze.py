"""kiln.analyze: the TransformState `kiln analyze` writes for the same rows, and its statistics as
a DataFrame."""
import glob
import os
import re

import numpy as np
import pandas as pd
import pytest

import kiln
from conftest import BABYWEIGHT, EXACT, kiln as run_kiln

NUMERIC = ["mother_age", "mother_educ", "father_age", "prenatal_visits", "prenatal_start_month", "cigs_per_day",
           "drinks_per_week", "weight_pounds"]
SPEC = os.path.join(BABYWEIGHT, "feature_spec.pbtxt")


def train_frame():
    files = sorted(glob.glob(os.path.join(BABYWEIGHT, "data", "train-*.csv")))
    return pd.concat([pd.read_csv(f, dtype={c: "float64" for c in NUMERIC} | {"key": str, "is_male": str, "mother_race": str},
                                  **EXACT) for f in files], ignore_index=True)


def without_files(text):
    return re.sub(r'^files: ".*"\n', "", text, flags=re.M)


def test_the_state_is_kiln_analyzes(tmp_path):
    out = tmp_path / "state.pbtxt"
    run_kiln("analyze", "--spec", SPEC, "--data", os.path.join(BABYWEIGHT, "data", "train-*.csv"), "--output", str(out), "--quiet")
    state = kiln.analyze(train_frame(), SPEC)
    assert without_files(state.text) == without_files(out.read_text())
    assert state.rows == len(train_frame()) and state.bad_rows == 0


def test_statistics_as_a_dataframe(tmp_path):
    df = train_frame()
    state = kiln.analyze(df, SPEC)
    stats = state.statistics
    assert isinstance(stats, pd.DataFrame)
    assert stats.loc["mother_age", "kind"] == "numeric"
    assert stats.loc["mother_age", "count"] == df["mother_age"].notna().sum()
    assert stats.loc["mother_age", "mean"] == pytest.approx(df["mother_age"].mean(), rel=1e-12)
    assert stats.loc["mother_age", "std"] == pytest.approx(df["mother_age"].std(ddof=0), rel=1e-9)
    assert stats.loc["father_age", "missing"] == df["father_age"].isna().sum()
    assert stats.loc["mother_race", "kind"] == "vocabulary"
    assert stats.loc["mother_race", "top"][0] == df["mother_race"].value_counts().index[0]
    assert stats.loc["weight_pounds", "kind"] == "label"
    # save() writes what a TrainConfig's transform_state reads.
    path = state.save(tmp_path / "s.pbtxt")
    assert open(path).read() == state.text


def test_a_spec_as_text_and_its_errors():
    df = train_frame().head(50)
    spec = 'features { name: "age" source: "mother_age" numeric { scaling: Z_SCORE } }\nlabel { column: "weight_pounds" type: REGRESSION }\n'
    state = kiln.analyze(df, spec)
    assert state.rows == 50
    with pytest.raises(kiln.KilnError, match="feature 'age': the data \\(rows\\) has no column 'mother_age'"):
        kiln.analyze(df.drop(columns=["mother_age"]), spec)
    bad = df.assign(mother_age=df["mother_age"].astype(object))
    bad.loc[4, "mother_age"] = np.inf
    with pytest.raises(kiln.KilnError, match=r"rows\[4\].mother_age"):
        kiln.analyze(bad, spec)
