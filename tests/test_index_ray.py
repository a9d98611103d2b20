"""``qa index --ray``: the encoder in Ray actors, rows written to a Milvus store per batch.

Slow (Ray starts worker processes): a few short documents only. Skipped, with the reason,
without the ``ray`` and ``milvus`` extras; the usage checks always run.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

HAVE_RAY = importlib.util.find_spec("ray") is not None
HAVE_MILVUS = all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite", "jieba"))
needs_ray = pytest.mark.skipif(not (HAVE_RAY and HAVE_MILVUS),
                               reason='needs the ray and milvus extras (pip install "qa-zh[ray,milvus]")')


def test_ray_without_a_store_is_a_usage_error(qa_cli, tmp_path):
    r = qa_cli("index", "--ray", str(tmp_path))
    assert r.returncode == 2 and "--ray writes into a store" in r.stderr and "Traceback" not in r.stderr


def test_ray_takes_an_address_or_leaves_the_path_alone():
    from qa.cli import ray_address
    assert ray_address("auto") and ray_address("ray://head:10001") and ray_address("10.0.0.2:6379")
    assert not ray_address("docs/") and not ray_address("./reports")


@needs_ray
def test_cli_ray_indexes_a_folder(tmp_path, write_corpus, qa_cli):
    uri = f"milvus-lite:{tmp_path}/cli.db#tiny"
    r = qa_cli("index", "--quiet", "--no-seeds", "--store", uri, "--ray", str(write_corpus(tmp_path / "corpus")),
               env={"QA_RAY_CPUS": "2"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "3 new" in r.stdout
    r = qa_cli("ask", "--store", uri, "白鹭湖新区有多少家高新技术企业")
    assert "86家" in r.stdout


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the tests below (the CLI test above starts its own, before this one)."""
    if not (HAVE_RAY and HAVE_MILVUS):
        pytest.skip('needs the ray and milvus extras (pip install "qa-zh[ray,milvus]")')
    from qa.index.ray_build import RayEncoder
    encoder = RayEncoder(num_cpus=2)
    encoder.start()
    yield encoder
    encoder.shutdown()


def _rows(uri):
    from qa.index.backends import open_store
    store = open_store(uri)
    return {r["key"]: np.asarray(r["vector"], np.float32)
            for part in ("chunks", "sentences") for r in store._iterate(part, "", ["key", "vector"])}


@needs_ray
def test_ray_builds_the_same_collection_as_one_process(local_ray, tmp_path, write_corpus):
    from qa.index.backends import open_store
    from qa.index.stores import update_store
    from qa.pipeline import Pipeline
    corpus = str(write_corpus(tmp_path / "corpus"))
    plain, ray = f"milvus-lite:{tmp_path}/plain.db#tiny", f"milvus-lite:{tmp_path}/ray.db#tiny"
    update_store(open_store(plain), [corpus], seeds=False)
    report, _ = update_store(open_store(ray), [corpus], seeds=False, encode_rows=local_ray)
    assert report.texts_encoded > 0
    a, b = _rows(plain), _rows(ray)
    assert set(a) == set(b)                                     # the same chunk and sentence ids
    assert min(float(a[k] @ b[k]) for k in a) >= 0.999          # the same vectors
    answer = Pipeline.load(store=ray).answer("星河市2023年地区生产总值是多少")
    assert answer.text == "1520亿元"


@needs_ray
def test_ray_resumes_after_a_failure_without_encoding_what_was_written(local_ray, tmp_path, write_corpus,
                                                                       monkeypatch):
    from qa.errors import StoreUnavailableError
    from qa.index import ray_build
    from qa.index.backends import open_store
    from qa.index.stores import update_store
    monkeypatch.setattr(ray_build, "WRITE_BATCH", 2)
    corpus = str(write_corpus(tmp_path / "corpus"))
    uri = f"milvus-lite:{tmp_path}/resume.db#tiny"
    store = open_store(uri)
    written = []
    real_add = store.add_rows

    def add_then_fail(rows):
        if written:
            raise StoreUnavailableError("the server went away")
        written.append(len(rows))
        real_add(rows)

    monkeypatch.setattr(store, "add_rows", add_then_fail)
    with pytest.raises(StoreUnavailableError):
        update_store(store, [corpus], seeds=False, encode_rows=local_ray)
    report, _ = update_store(open_store(uri), [corpus], seeds=False, encode_rows=local_ray)
    assert report.texts_cached == written[0]
    assert report.texts_cached + report.texts_encoded == len(_rows(uri))
