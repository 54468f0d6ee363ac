"""Python's cyclic garbage collector: run less often while a source's body is parsed and stored,
and kept off what a long-running process loaded at start.

Reading a batch allocates millions of objects that live until it is stored (sightings, records,
plans, rows) and die together. Python's collector, set off every 700 allocations, walks them
again and again while they live, and each of its full collections walks every object of the
process: measured on batches of 10,000 papers, 15-22 % of a batch's time, and a batch that met
one more full collection than another took up to a tenth longer. Little of what a batch makes is
garbage only the collector frees (mostly pylatexenc's walkers, about 50 objects a LaTeX-bearing
entry), so during a batch the youngest generation is collected every BATCH_THRESHOLD allocations
instead: the older generations, and the full walks, come that many times less often, and the
garbage a hostile body can pile up between two collections stays bounded.

The collector is the process's: ingest threads (and the web's, in a server) share it. The first
batch to start sets the threshold, the last to end puts back what was there; each collects the
youngest generation as it ends, which frees its own cycles at once.

A full collection walks every object the collector tracks, and a loaded app holds over 100,000
(libraries, the app, its compiled queries): about 80 ms here, every thread of the process held
meanwhile, which a server met every twenty or so feed renders. Those live as long as the process,
so long-running processes freeze them once loaded (`freeze_loaded`, Python's gc.freeze): full
collections then walk only what came after.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BATCH_THRESHOLD = 100_000  # allocations between two young collections while a batch runs

_lock = threading.Lock()
_running = 0  # batches inside `collector_held`
_saved: tuple[int, int, int] = gc.get_threshold()  # the thresholds before the first of them


@contextmanager
def collector_held() -> Iterator[None]:
    """The collector's youngest generation collected every BATCH_THRESHOLD allocations (in any
    thread) while the block runs, then as before; the block's young garbage collected after."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(BATCH_THRESHOLD, *_saved[1:])
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)
        gc.collect(0)


def freeze_loaded() -> None:
    """Everything alive now stays out of the collector's walks for good (the app and libraries
    a server or worker loaded before its first request); its garbage is collected first."""
    gc.collect()
    gc.freeze()
