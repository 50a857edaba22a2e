"""Raw features from Python containers into the columns the C++ core reads.

Numbers the model reads as numbers go over as float64 numpy arrays: a float64 column of a
DataFrame or a dict of arrays is passed as it is (zero-copy); other numeric types are converted
once. Missing values are NaN or None. Everything else goes over as a list of str or None, written
as a JSON client's values are written by the server (3.0 -> "3", so Python and REST agree).
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np


def as_columns(data):
    """A pandas DataFrame, a mapping of name -> array-like, or a list of dicts -> {name: column}."""
    if hasattr(data, "columns") and hasattr(data, "__getitem__") and hasattr(data, "to_numpy"):  # DataFrame
        return {str(name): data[name] for name in data.columns}
    if isinstance(data, Mapping):
        return {str(name): values for name, values in data.items()}
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        names = []
        for row in data:
            if not isinstance(row, Mapping):
                raise TypeError(f"rows must be dicts of raw features, got {type(row).__name__}")
            for name in row:
                if name not in names:
                    names.append(name)
        # A feature a row leaves out is missing in that row (a request must send null instead).
        return {str(n): [row.get(n) for row in data] for n in names}
    raise TypeError(f"expected a pandas DataFrame, a dict of arrays or a list of dicts, got {type(data).__name__}")


def _is_missing(v):
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return type(v).__name__ in ("NAType", "NaTType")


def number_text(v):
    """A number as the server writes a JSON number it reads as text: an integer as it is, a float
    as std::to_chars does (the shortest digits that round-trip, fixed or scientific, whichever is
    shorter): 3.0 -> "3", 1e15 -> "1e+15", 0.1 -> "0.1"."""
    if isinstance(v, (bool, np.bool_)):
        raise ValueError("a bool is not a number here")
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    f = float(v)
    fixed = np.format_float_positional(f, trim="-")
    scientific = np.format_float_scientific(f, trim="-", exp_digits=2)
    return fixed if len(fixed) <= len(scientific) else scientific


def numbers(name, values):
    """float64, NaN = missing; a float64 ndarray or Series comes back as the same memory."""
    arr = values.to_numpy() if hasattr(values, "to_numpy") else values
    if isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.dtype.kind in "fiub":
        return np.ascontiguousarray(arr, dtype=np.float64)
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        if _is_missing(v):
            out[i] = np.nan
        elif isinstance(v, str):
            try:
                out[i] = float(v) if v.strip() else np.nan
            except ValueError:
                raise ValueError(f"rows[{i}].{name}: expected a number, got '{v}'") from None
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"rows[{i}].{name}: expected a number, got {type(v).__name__}") from None
    return out


def texts(name, values, delimiter=""):
    """list of str or None; a list value of a multi-valued feature is joined with its delimiter."""
    arr = values.to_numpy() if hasattr(values, "to_numpy") else values
    out = []
    for v in arr:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (list, tuple, np.ndarray)):
            if not delimiter:
                raise ValueError(f"column '{name}': a list value, but the feature takes one value per row")
            out.append(delimiter.join(x if isinstance(x, str) else number_text(x) for x in v))
        elif _is_missing(v):
            out.append(None)
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            out.append(number_text(v))
        else:
            raise ValueError(f"column '{name}': expected str or a number, got {type(v).__name__}")
    return out


def prepare(columns, schema):
    """Columns of `schema` ([{'name', 'type': 'number' | 'string' | 'key', 'delimiter'}]) as the core takes them."""
    out = {}
    for col in schema:
        name = col["name"]
        if name not in columns:
            continue  # the core names what is missing
        values = columns[name]
        if col["type"] == "number":
            out[name] = numbers(name, values)
        else:
            arr = values.to_numpy() if hasattr(values, "to_numpy") else values
            # Floats read as text: the server's spelling of the number (3.0 -> "3"), done in C++.
            if isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.dtype.kind == "f" and col["type"] != "key":
                out[name] = np.ascontiguousarray(arr, dtype=np.float64)
            else:
                out[name] = texts(name, values, col.get("delimiter", ""))
    return out
