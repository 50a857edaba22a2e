"""kiln.Servable: an exported model version, predicting from raw features in this process."""
import numpy as np

from kiln import _columns
from kiln._kiln import ServableHandle


class Servable:
    """An exported servable (a version directory, or a base path: its newest version).

    predict() takes raw features as `kiln serve` does -- a pandas DataFrame, a dict of arrays or a
    list of dicts -- transforms them with the recorded TransformState and runs the model; the
    result is the server's answer, bit for bit, as numpy arrays.
    """

    def __init__(self, path, device="cpu", precision="default"):
        """`device`: "cpu", "sim[:N]" or "cuda[:N]"; `precision`: "default" (as the version was
        exported), "fp32", "tf32" or "bf16" for the GEMMs and convolutions, as kiln serve
        --device / --precision take them."""
        self._handle = ServableHandle(str(path), device, precision)
        self._inputs = self._handle.inputs
        self._tabular = self._handle.tabular  # fixed for the version: not asked again per call

    @property
    def name(self):
        return self._handle.name

    @property
    def version(self):
        return self._handle.version

    @property
    def path(self):
        return self._handle.path

    @property
    def device(self):
        return self._handle.device

    @property
    def precision(self):
        return self._handle.precision

    @property
    def inputs(self):
        """The raw columns the model takes: [{'name', 'type': 'number' | 'string' | 'key', 'nullable', 'delimiter'}]."""
        return [dict(c) for c in self._inputs]

    def columns_for(self, data):
        """What predict() hands to the core: float64 arrays (shared with `data` where it holds
        float64 already) and lists of str."""
        return _columns.prepare(_columns.as_columns(data), self._inputs)

    def predict(self, data, batch_size=1024):
        """{output name: numpy array of shape (rows, width)} ('classes' and 'key': lists of str).

        Rows the server would refuse (a required feature missing, a value that is not a number)
        raise KilnError naming the row and the column. The GIL is released while the model runs.
        """
        if isinstance(data, np.ndarray) and not self._tabular:
            if data.ndim != 2 or data.dtype != np.float32 or not data.flags.c_contiguous:
                data = np.ascontiguousarray(data.reshape(len(data), -1), dtype=np.float32)
            return self._handle.predict_tensor(data, batch_size)
        return self._handle.predict(self.columns_for(data), batch_size)

    def __repr__(self):
        return f"kiln.Servable({self.name!r} version {self.version} on {self.device}, inputs {[c['name'] for c in self._inputs]})"
