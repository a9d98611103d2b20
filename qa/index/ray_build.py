"""``qa index --ray``: the encoder runs in Ray actors, vectors land in the store batch by batch.

Needs the ``ray`` extra (``pip install "qa-zh[ray]"``); ray is imported here only. The driver
reads and chunks the documents (``qa.index.stores.index_into_store``) and hands the rows still to
encode to :class:`RayEncoder`: a Ray Data dataset of texts, ``map_batches`` over a pool of actors
that each load the encoder once, and the results streamed back to the driver, which writes each
batch into the store as it arrives. A run that fails part-way keeps what it wrote: the next run
asks the store which rows it holds and encodes only the rest.

Locally Ray starts on this machine (``ray.init(num_cpus=…)``, every CPU unless
``QA_RAY_CPUS``); with an address (``ray://head:10001``, ``auto``) it joins that cluster, whose
workers need this project installed (``pip install "qa-zh[ray]"`` on every node; docs/scale.md).
"""
from __future__ import annotations

import os

import numpy as np

from qa.errors import StoreUnavailableError, UsageError
from qa.index.stores import WRITE_BATCH, Rows

ENCODE_BATCH = 64                                         # texts per map_batches call
ACTOR_CPUS = float(os.environ.get("QA_RAY_ACTOR_CPUS", "1"))   # CPUs (and encoder threads) per actor


def _ray():
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError('qa index --ray needs the ray extra: pip install "qa-zh[ray]"') from None
    if not os.environ.get("QA_DEBUG"):      # qa's own bar and messages say what happens
        import logging
        import warnings
        for name in ("ray", "ray.data", "ray.util"):
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"ray(\.|$)")
    return ray


class EncodeBatch:
    """A Ray actor's work: the encoder loaded once, then ``{"i", "text"}`` batches → ``{"i", "vector"}``."""

    def __init__(self):
        from embeddings.encoders import get_encoder
        # the encoder's name comes in the environment: constructor arguments would live in Ray's
        # object store, and a restarted actor could not get them back
        self.encoder = get_encoder(os.environ.get("QA_RAY_ENCODER") or None)

    def __call__(self, batch: dict) -> dict:
        vectors = self.encoder.encode_passages([str(t) for t in batch["text"]])
        return {"r": batch["r"], "i": batch["i"], "vector": np.asarray(vectors, np.float32)}


class RayEncoder:
    """``encode_rows`` for :func:`qa.index.stores.index_into_store`: encode every row of
    ``row_sets`` (chunks, sentences) in one Ray Data pass and call ``write(part)`` for each batch
    of encoded rows of one set, ``progress(n)`` after it."""

    def __init__(self, address: str | None = None, encoder: str | None = None, num_cpus: int | None = None):
        self.address, self.encoder = address or None, encoder
        self.num_cpus = num_cpus or int(os.environ.get("QA_RAY_CPUS", "0")) or os.cpu_count() or 2
        self._ray = _ray()

    def start(self):
        ray = self._ray
        if ray.is_initialized():
            return ray
        threads = str(max(1, int(ACTOR_CPUS)))
        env = {"env_vars": {"OMP_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE",
                            "QA_RAY_ENCODER": self.encoder or ""}}
        # a local Ray gives its raylet 30 s to register (hard-coded in ray); on a loaded machine
        # that can pass: try again, the second start finds its files warm
        for attempt in range(1 if self.address else 3):
            try:
                if self.address:
                    ray.init(address=self.address, runtime_env=env, log_to_driver=False, logging_level="ERROR")
                else:
                    ray.init(num_cpus=self.num_cpus, runtime_env=env, include_dashboard=False, log_to_driver=False,
                             logging_level="ERROR")
                break
            except Exception as e:       # ray raises plain Exception when its raylet or GCS does not start
                if ray.is_initialized():
                    ray.shutdown()
                if attempt == (0 if self.address else 2):
                    where = self.address or "this machine"
                    raise StoreUnavailableError(f"cannot start or join Ray at {where} "
                                                f"({' '.join(str(e).split())[:200]})") from None
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False          # qa's own bar counts the passages
        ctx.verbose_progress = False
        with_progress = getattr(ctx, "print_on_execution_start", None)
        if with_progress is not None:
            ctx.print_on_execution_start = False
        return ray

    def actors(self) -> int:
        cpus = float(self._ray.cluster_resources().get("CPU", 1))
        return max(1, int(cpus // ACTOR_CPUS))

    def __call__(self, row_sets: list[Rows], write, progress=None) -> None:
        ray = self.start()
        items = [{"r": r, "i": i, "text": t} for r, rows in enumerate(row_sets) for i, t in enumerate(rows.encode_texts)]
        if not items:
            return
        actors = self.actors()
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), max(2 * actors,
                                                                                        len(items) // ENCODE_BATCH))))
        encoded = ds.map_batches(EncodeBatch, batch_size=ENCODE_BATCH,
                                 batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                                 num_cpus=ACTOR_CPUS)
        for batch in encoded.iter_batches(batch_size=WRITE_BATCH, batch_format="numpy"):
            for r, rows in enumerate(row_sets):
                mine = batch["r"] == r
                if not mine.any():
                    continue
                part = rows.take(int(i) for i in batch["i"][mine])
                part.vectors = np.asarray(np.stack(batch["vector"][mine]), np.float32)
                write(part)
                if progress:
                    progress(len(part))

    def shutdown(self) -> None:
        if self._ray.is_initialized():
            self._ray.shutdown()
