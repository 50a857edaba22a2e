"""kiln.train: `kiln train` in this process, with a progress bar that works in notebooks."""
import os


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(_value(x) for x in v)
    return str(v)


def train(config, progress=True, **overrides):
    """Trains the TrainConfig `config` (a file or its text) to the end, resuming from output_dir's
    newest checkpoint as `kiln train` does. Keyword arguments override fields, as --set does:
    train("train.pbtxt", epochs=3, output_dir="runs/a"); nested fields with a dict:
    train(cfg, **{"optimizer.learning_rate": 0.01}).

    Returns {'metrics': final eval metrics, 'steps', 'epochs', 'early_stopped', 'already_done',
    'examples_per_second', 'checkpoint', 'output_dir'}. The GIL is released while it trains;
    Ctrl-C (KeyboardInterrupt) stops it between steps, the checkpoints written so far kept.
    """
    from kiln import _kiln

    cfg = os.fspath(config) if isinstance(config, os.PathLike) else config
    sets = [f"{k}={_value(v)}" for k, v in overrides.items()]
    bar = _Bar() if progress else None
    try:
        return _kiln.train(cfg, sets, bar.update if bar else None)
    finally:
        if bar:
            bar.close()


class _Bar:
    """tqdm (tqdm.auto: a widget in Jupyter, text in a terminal) when installed, else lines."""

    def __init__(self):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self._tqdm = tqdm
        self._bar = None

    def update(self, e):
        if e["message"]:
            (self._bar.write if self._bar else print)(e["message"])
            return
        if self._tqdm is None:
            print(f"step {e['step']}/{e['total']} epoch {e['epoch']} loss {e['loss']:.4f}", flush=True)
            return
        if self._bar is None:
            self._bar = self._tqdm(total=e["total"], initial=0, unit="step")
        self._bar.n = e["step"]
        self._bar.set_postfix(epoch=e["epoch"], loss=f"{e['loss']:.4f}", ex_per_s=f"{e['examples_per_second']:.0f}", refresh=False)
        self._bar.refresh()

    def close(self):
        if self._bar is not None:
            self._bar.close()
