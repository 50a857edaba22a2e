#!/usr/bin/env python3
"""Reads a TensorBoard log directory with TensorBoard's own EventAccumulator and prints, for each
requested scalar tag, `TAG COUNT LAST_STEP LAST_VALUE duplicates=N` (N: events at a step already
seen, e.g. a resumed run's steps shown twice). Exits 1 if a tag is missing, so tests can
check that Kiln's event files are readable by the real consumer, not only by Kiln.

usage: read_tensorboard_events.py LOGDIR TAG [TAG...]
"""
import os
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    logdir, tags = argv[1], argv[2:]
    if not os.path.isdir(logdir):
        print(f"no such log directory: {logdir}", file=sys.stderr)
        return 1
    # Imported late so a usage error does not pay TensorBoard's import time.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # size_guidance 0 keeps every scalar event instead of a reservoir sample.
    accumulator = EventAccumulator(logdir, size_guidance={"scalars": 0})
    accumulator.Reload()
    available = set(accumulator.Tags().get("scalars", []))
    status = 0
    for tag in tags:
        if tag not in available:
            print(f"missing scalar tag {tag!r}; found {sorted(available)}", file=sys.stderr)
            status = 1
            continue
        events = accumulator.Scalars(tag)
        last = events[-1]
        duplicates = len(events) - len({e.step for e in events})
        print(f"{tag} {len(events)} {last.step} {last.value!r} duplicates={duplicates}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
