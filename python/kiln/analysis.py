"""kiln.analyze: the full pass of `kiln analyze` over data in memory."""
import os

from kiln import _columns
from kiln import _kiln


class TransformState:
    """What analysis recorded: the statistics, vocabularies and buckets the Transformer applies.

    `statistics` is a pandas DataFrame (a list of dicts without pandas), one row per feature and
    the label; `text` the TransformState in protobuf text format, as `kiln analyze --output`
    writes it; save() writes it where a TrainConfig's `transform_state` names it.
    """

    def __init__(self, text, statistics, rows, bad_rows):
        self.text = text
        self.rows = rows
        self.bad_rows = bad_rows
        try:
            import pandas as pd

            self.statistics = pd.DataFrame(statistics).set_index("feature")
        except ImportError:
            self.statistics = statistics

    def save(self, path):
        """Writes the state atomically (a temporary file renamed into place)."""
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.text)
        os.replace(tmp, path)
        return path

    def __repr__(self):
        return f"kiln.TransformState({self.rows} rows, {self.bad_rows} bad, {len(self.statistics)} features and label)"


def analyze(data, feature_spec):
    """Analyzes `data` (a DataFrame, a dict of arrays or a list of dicts) with `feature_spec` (a
    FeatureSpec file or its text): the same statistics `kiln analyze` computes from the same rows
    in a CSV file. Numbers read as text by a categorical feature are spelled as the server spells
    JSON numbers (3.0 -> "3")."""
    spec = os.fspath(feature_spec) if isinstance(feature_spec, os.PathLike) else feature_spec
    columns = _columns.as_columns(data)
    wanted = _kiln.spec_columns(spec)
    text, stats, rows, bad = _kiln.analyze(spec, _columns.prepare(columns, wanted))
    return TransformState(text, stats, rows, bad)
