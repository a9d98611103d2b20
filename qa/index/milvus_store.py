"""The Milvus store: a collection's chunks, sentences and documents as rows of three Milvus
collections, searched inside Milvus (dense, BM25, hybrid). Needs the ``milvus`` extra
(``pip install "qa-zh[milvus]"``: pymilvus, and milvus-lite with jieba for local use); pymilvus
is imported here only.

Collections for ``--store …/NAME`` (schema in ``docs/scale.md``):

- ``NAME_chunks``: ``key`` (primary), ``doc_id``, ``seq``, ``start``/``end`` (half-open, into
  the document's original text), ``text`` (original), ``text_norm`` (the one normaliser's output:
  traditional folded to simplified; analysed by jieba), ``terms`` (the project's BM25 tokens of
  ``text_norm``, Han unigrams + bigrams and ASCII words, space-separated), ``vector`` (float,
  inner product), and two sparse fields Milvus's BM25 function fills from ``text_norm`` and
  ``terms`` — keyword search never leaves the server;
- ``NAME_sentences``: the same spans and a vector per sentence, for the reader;
- ``NAME_documents``: each document as JSON (text, title, date, layout) in parts of at most
  ``PART_CHARS`` characters, with its content hash, and the manifest (``kind`` "manifest").

Keyword search uses the ``terms`` field (``KEYWORD_FIELD``): the project's tokens under
Milvus's BM25 (k1 1.2, b 0.75, as ``qa.retrieve.bm25``) retrieve like the FAISS path; jieba words
over ``text_norm`` were measured beside it (README "Scale", ``python -m tools.bench.stores``).
Fusion (``FUSION``): min-max over both searches' top ``DEPTH``, the project's rule, computed from
Milvus's scores; ``rrf`` and ``weighted`` run Milvus's own ``hybrid_search`` rankers.
"""
from __future__ import annotations

import contextlib
import json
import os

import numpy as np

from qa.errors import IndexError_, QAError, StoreUnavailableError, UsageError
from qa.index.store import IndexData
from qa.index.stores import Rows, StoreSpec, check_compatible, document_hash
from qa.retrieve.bm25 import bm25_tokens
from qa.text.chunking import ChunkSpec
from qa.text.normalize import normalize
from qa.types import Chunk, Document, PassageHit, Question, Sentence

PART_CHARS = 16_000          # ≤ 64 KB of UTF-8 per part: under Milvus's VARCHAR limit (65,535 bytes)
DEPTH = 50                   # candidates per search before fusion, as HybridRetriever
ALPHA = 0.5                  # BM25 weight in min-max fusion, as HybridRetriever
FUSIONS = ("minmax", "rrf", "weighted")
FUSION = os.environ.get("QA_MILVUS_FUSION", "minmax")
KEYWORD_FIELDS = {"terms": "sparse_terms", "jieba": "sparse_jieba"}
KEYWORD_FIELD = os.environ.get("QA_MILVUS_KEYWORDS", "terms")
CALL_TIMEOUT = float(os.environ.get("QA_MILVUS_TIMEOUT", "60"))   # seconds per request
MANIFEST_ID = ":manifest:"
_ITER_BATCH = 1000


def _pymilvus():
    if not os.environ.get("QA_DEBUG"):     # gRPC's own notes (fork() under Ray, keepalive) are not the user's
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        import pymilvus
    except ImportError:
        raise UsageError('the Milvus store needs the milvus extra: pip install "qa-zh[milvus]" '
                         '(pymilvus, milvus-lite, jieba)') from None
    if not os.environ.get("QA_DEBUG"):        # pymilvus logs every failed call with its traceback
        import logging
        for name in ("pymilvus", "milvus_lite", "grpc"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:                                    # milvus-lite's jieba analyzer announces its dictionary
            import jieba
            jieba.setLogLevel(logging.WARNING)
        except ImportError:
            pass
    return pymilvus


_UNREACHABLE = ("connect", "unavailable", "deadline", "timeout", "timed out", "refused", "closed channel",
                "not ready", "socket", "reset")


def terms_text(normalized: str) -> str:
    """The project's BM25 tokens of normalised text, space-separated, for Milvus's analyzer
    (``.``/``%`` inside ASCII tokens become ``_`` so a ``\\w+`` tokenizer keeps ``604.5`` whole)."""
    return " ".join(t.replace(".", "_").replace("%", "_") for t in bm25_tokens(normalized, normalized=True))


def _pk(hit) -> str:
    """A search hit's primary key (``key``; older servers also name it ``id``)."""
    return hit["key"] if "key" in hit else hit["id"]


def _quote(values) -> str:
    return "[" + ", ".join(json.dumps(str(v), ensure_ascii=False) for v in values) + "]"


class MilvusStore:
    """One collection in a Milvus server (``milvus://``) or a local milvus-lite folder."""

    def __init__(self, spec: StoreSpec):
        self.spec = spec
        self.name = spec.collection
        self._client = None
        self._pm = _pymilvus()

    # --- connection and errors ------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            with self._errors("connect to"):
                if self.spec.kind == "milvus-lite":
                    self._client = self._pm.MilvusClient(uri=self.spec.uri, timeout=CALL_TIMEOUT)
                else:
                    # a refused connection fails at once; the timeout is for a busy server
                    self._client = self._pm.MilvusClient(uri=self.spec.uri, token=os.environ.get("MILVUS_TOKEN", ""),
                                                         timeout=CALL_TIMEOUT)
                # a collection is searchable once loaded (a server keeps it loaded; milvus-lite forgets)
                for name in set(self._client.list_collections(timeout=CALL_TIMEOUT)) & \
                        {self._c(p) for p in ("chunks", "sentences", "documents")}:
                    self._client.load_collection(name, timeout=CALL_TIMEOUT)
        return self._client

    @contextlib.contextmanager
    def _errors(self, doing: str):
        """Any failure of the server or the connection as one line: :class:`StoreUnavailableError`."""
        try:
            yield
        except QAError:
            raise
        except Exception as e:     # pymilvus raises MilvusException, grpc.RpcError, OSError, milvus-lite's own
            what = getattr(e, "message", "") or str(e) or e.__class__.__name__
            what = " ".join(str(what).split())[:300]
            where = self.spec.uri if self.spec.kind == "milvus" else f"milvus-lite {self.spec.uri}"
            if self._client is None or any(w in what.lower() for w in _UNREACHABLE) or isinstance(e, OSError):
                raise StoreUnavailableError(f"cannot {doing} the Milvus store at {where} ({what}); is the "
                                            f"server running and reachable? (--store {self.spec.text})") from None
            raise StoreUnavailableError(f"the Milvus store at {where} refused to {doing.split()[0]}: {what} "
                                        f"(--store {self.spec.text})") from None

    def _call(self, method: str, *args, doing: str = "reach", **kwargs):
        with self._errors(doing):
            return getattr(self.client, method)(*args, timeout=CALL_TIMEOUT, **kwargs)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    def _c(self, part: str) -> str:
        return f"{self.name}_{part}"

    # --- schema ----------------------------------------------------------------------------

    def _ensure(self, dim: int) -> None:
        """Create the three collections if missing (a write needs them)."""
        pm, DataType = self._pm, self._pm.DataType
        existing = set(self._call("list_collections"))
        if self._c("chunks") not in existing:
            # a Milvus server splits the tokens on spaces; milvus-lite knows only `standard` (\w+) and
            # jieba, which split space-joined tokens the same way (see terms_text)
            try:
                self._create_chunks(dim, {"tokenizer": "whitespace"})
            except StoreUnavailableError as e:
                if "tokenizer" not in str(e):
                    raise
                self._create_chunks(dim, {"tokenizer": "standard"})
        if self._c("sentences") not in existing:
            s = self._span_schema()
            s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            ip = self.client.prepare_index_params()
            ip.add_index("vector", index_type="FLAT", metric_type="IP")
            self._call("create_collection", self._c("sentences"), schema=s, index_params=ip,
                       consistency_level="Strong", doing="create a collection in")
        if self._c("documents") not in existing:
            s = pm.MilvusClient.create_schema(auto_id=False)
            s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
            s.add_field("kind", DataType.VARCHAR, max_length=16)
            s.add_field("doc_id", DataType.VARCHAR, max_length=8192)
            s.add_field("doc_hash", DataType.VARCHAR, max_length=64)
            s.add_field("part", DataType.INT64)
            s.add_field("parts", DataType.INT64)
            s.add_field("body", DataType.VARCHAR, max_length=65535)
            s.add_field("unused", DataType.FLOAT_VECTOR, dim=2)    # Milvus wants one vector field
            ip = self.client.prepare_index_params()
            ip.add_index("unused", index_type="FLAT", metric_type="IP")
            self._call("create_collection", self._c("documents"), schema=s, index_params=ip,
                       consistency_level="Strong", doing="create a collection in")

    def _span_schema(self):
        """A schema that starts with what chunks and sentences share: key, document, number and
        ``[start, end)`` in the document's text."""
        DataType = self._pm.DataType
        s = self._pm.MilvusClient.create_schema(auto_id=False)
        s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        s.add_field("doc_id", DataType.VARCHAR, max_length=8192)
        s.add_field("seq", DataType.INT64)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        return s

    def _create_chunks(self, dim: int, terms_analyzer: dict) -> None:
        pm, DataType = self._pm, self._pm.DataType
        s = self._span_schema()
        s.add_field("text", DataType.VARCHAR, max_length=65535)
        s.add_field("text_norm", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                    analyzer_params={"tokenizer": "jieba"})
        s.add_field("terms", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                    analyzer_params=terms_analyzer)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_field("sparse_jieba", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("sparse_terms", DataType.SPARSE_FLOAT_VECTOR)
        for field, out in (("text_norm", "sparse_jieba"), ("terms", "sparse_terms")):
            s.add_function(pm.Function(name=f"bm25_{out}", function_type=pm.FunctionType.BM25,
                                       input_field_names=[field], output_field_names=[out]))
        ip = self.client.prepare_index_params()
        ip.add_index("vector", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 80})
        for out in KEYWORD_FIELDS.values():
            ip.add_index(out, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self._call("create_collection", self._c("chunks"), schema=s, index_params=ip,
                   consistency_level="Strong", doing="create a collection in")

    def prepare(self, dim: int) -> None:
        """Make the collections ready for rows of vectors of ``dim`` (before a write)."""
        self._ensure(dim)

    def exists(self) -> bool:
        return self._c("documents") in set(self._call("list_collections"))

    def drop(self) -> None:
        for part in ("chunks", "sentences", "documents"):
            if self._call("has_collection", self._c(part)):
                self._call("drop_collection", self._c(part), doing="drop a collection in")

    # --- documents and the manifest --------------------------------------------------------

    def _put_parts(self, kind: str, doc_id: str, doc_hash: str, body: str) -> None:
        import hashlib
        base = hashlib.sha1(f"{kind}\0{doc_id}".encode("utf-8", "surrogatepass")).hexdigest()[:40]
        parts = [body[i:i + PART_CHARS] for i in range(0, len(body), PART_CHARS)] or [""]
        rows = [{"key": f"d{base}-{i}", "kind": kind, "doc_id": doc_id, "doc_hash": doc_hash, "part": i,
                 "parts": len(parts), "body": p, "unused": [1.0, 0.0]} for i, p in enumerate(parts)]
        self._call("delete", self._c("documents"),
                   filter=f'kind == "{kind}" and doc_id == {json.dumps(doc_id, ensure_ascii=False)} '
                          f'and part >= {len(parts)}', doing="write to")
        for i in range(0, len(rows), 16):
            self._call("upsert", self._c("documents"), rows[i:i + 16], doing="write to")

    def read_manifest(self) -> dict:
        fix = f"build it with: qa index --store {self.spec.text} PATH…"
        if not self.exists():
            raise IndexError_(f"no collection {self.name!r} in the Milvus store {self.spec.text}; {fix}")
        rows = self._call("query", self._c("documents"), filter='kind == "manifest"',
                          output_fields=["part", "parts", "body"])
        if not rows:
            raise IndexError_(f"collection {self.name!r} in {self.spec.text} has no manifest "
                              f"(its first indexing run did not finish); {fix}")
        try:
            rows = sorted(rows, key=lambda r: r["part"])
            if len(rows) != rows[0]["parts"]:
                raise ValueError("parts missing")
            return json.loads("".join(r["body"] for r in rows))
        except (ValueError, KeyError) as e:
            raise IndexError_(f"the manifest of {self.spec.text} is damaged ({e.__class__.__name__}); "
                              f"rebuild it with: qa index --rebuild --store {self.spec.text} PATH…") from None

    def write_manifest(self, manifest: dict) -> None:
        self._ensure(int(manifest["encoder_dim"]))
        self._put_parts("manifest", MANIFEST_ID, "", json.dumps(manifest, ensure_ascii=False))

    def add_documents(self, documents: list[Document]) -> None:
        if not documents:
            return
        for d in documents:
            self._put_parts("doc", d.doc_id, document_hash(d), json.dumps(d.to_dict(), ensure_ascii=False))

    def stored_documents(self) -> dict[str, str]:
        """doc_id → content hash of every document stored (its first part written)."""
        if not self.exists():
            return {}
        return {r["doc_id"]: r["doc_hash"] for r in self._iterate("documents", 'kind == "doc" and part == 0',
                                                                   ["doc_id", "doc_hash"])}

    def existing_keys(self, doc_ids: list[str]) -> set[str]:
        """Keys of the chunk and sentence rows of ``doc_ids`` already in the store."""
        if not doc_ids or not self.exists():
            return set()
        keys: set[str] = set()
        for part in ("chunks", "sentences"):
            for i in range(0, len(doc_ids), 100):
                keys |= {r["key"] for r in self._iterate(part, f"doc_id in {_quote(doc_ids[i:i + 100])}", ["key"])}
        return keys

    def add_rows(self, rows: Rows) -> None:
        """Insert encoded chunk (``rows.kind`` "c") or sentence ("s") rows."""
        if not len(rows):
            return
        vecs = np.asarray(rows.vectors, np.float32)
        self._ensure(vecs.shape[1])
        if rows.kind == "c":
            data = []
            for i in range(len(rows)):
                norm = normalize(rows.texts[i])
                data.append({"key": rows.keys[i], "doc_id": rows.doc_ids[i], "seq": rows.seqs[i],
                             "start": rows.starts[i], "end": rows.ends[i], "text": rows.texts[i],
                             "text_norm": norm, "terms": terms_text(norm), "vector": vecs[i].tolist()})
            target = self._c("chunks")
        else:
            data = [{"key": rows.keys[i], "doc_id": rows.doc_ids[i], "seq": rows.seqs[i], "start": rows.starts[i],
                     "end": rows.ends[i], "vector": vecs[i].tolist()} for i in range(len(rows))]
            target = self._c("sentences")
        self._call("upsert", target, data, doing="write to")

    def delete_documents(self, doc_ids: list[str]) -> None:
        for i in range(0, len(doc_ids), 100):
            ids = _quote(doc_ids[i:i + 100])
            for part in ("chunks", "sentences"):
                self._call("delete", self._c(part), filter=f"doc_id in {ids}", doing="delete from")
            self._call("delete", self._c("documents"), filter=f'kind == "doc" and doc_id in {ids}',
                       doing="delete from")

    def fetch_chunks(self, keys: list[str]) -> dict[str, Chunk]:
        """The chunk rows of ``keys``: document, ``[start, end)`` and original text (``chunk_id`` -1:
        a row, not a position in a loaded index)."""
        out: dict[str, Chunk] = {}
        for i in range(0, len(keys), 100):
            for r in self._call("query", self._c("chunks"), filter=f"key in {_quote(keys[i:i + 100])}",
                                output_fields=["key", "doc_id", "start", "end", "text"], doing="read from"):
                out[r["key"]] = Chunk(-1, r["doc_id"], int(r["start"]), int(r["end"]), r["text"])
        return out

    def count(self, kind: str) -> int:
        part = {"c": "chunks", "s": "sentences", "d": "documents"}[kind]
        flt = 'kind == "doc" and part == 0' if kind == "d" else ""
        rows = self._call("query", self._c(part), filter=flt, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _iterate(self, part: str, flt: str, fields: list[str]):
        with self._errors("read from"):
            it = self.client.query_iterator(self._c(part), batch_size=_ITER_BATCH, filter=flt,
                                            output_fields=fields, timeout=CALL_TIMEOUT)
            try:
                while True:
                    batch = it.next()
                    if not batch:
                        break
                    yield from batch
            finally:
                it.close()

    # --- loading what the reader needs ------------------------------------------------------

    def load(self, encoder, spec: ChunkSpec = ChunkSpec()) -> IndexData:
        """Documents, sentences (with vectors) and chunks (without) into memory, checked against
        the manifest: another encoder or chunking, or rows that do not match it (a run that was
        interrupted), is :class:`IndexError_` naming the command that fixes it."""
        from embeddings.vectors import build_faiss
        from qa.index.store import corpus_fingerprint
        manifest = self.read_manifest()
        where = f"collection {self.spec.text}"
        check_compatible(manifest, encoder, spec, where, f"rebuild it with: qa index --rebuild --store {self.spec.text}")
        parts: dict[str, list] = {}
        for r in self._iterate("documents", 'kind == "doc"', ["doc_id", "part", "parts", "body"]):
            parts.setdefault(r["doc_id"], []).append(r)
        documents: dict[str, Document] = {}
        try:
            for doc_id in sorted(parts):
                rows = sorted(parts[doc_id], key=lambda r: r["part"])
                if len(rows) != rows[0]["parts"]:
                    raise ValueError(f"{doc_id}: parts missing")
                documents[doc_id] = Document.from_dict(json.loads("".join(r["body"] for r in rows)))
        except (ValueError, KeyError, TypeError) as e:
            raise IndexError_(f"{where} holds a damaged document ({str(e)[:120]}); "
                              f"update it with: qa index --store {self.spec.text}") from None
        order = {d: i for i, d in enumerate(documents)}
        chunk_rows = sorted((r for r in self._iterate("chunks", "", ["key", "doc_id", "seq", "start", "end", "text"])
                             if r["doc_id"] in order), key=lambda r: (order[r["doc_id"]], r["seq"]))
        sent_rows = sorted((r for r in self._iterate("sentences", "", ["key", "doc_id", "seq", "start", "end", "vector"])
                            if r["doc_id"] in order), key=lambda r: (order[r["doc_id"]], r["seq"]))
        counts = manifest.get("counts", {})
        if corpus_fingerprint(list(documents.values())) != manifest.get("fingerprint") or \
                counts.get("chunks") != len(chunk_rows) or counts.get("sentences") != len(sent_rows):
            raise IndexError_(f"{where} does not match its manifest (an indexing run was interrupted, or another "
                              f"writer is busy); finish it with: qa index --store {self.spec.text}")
        chunks = [Chunk(i, r["doc_id"], int(r["start"]), int(r["end"]), r["text"]) for i, r in enumerate(chunk_rows)]
        for c in chunks:
            if documents[c.doc_id].text[c.start:c.end] != c.text:
                raise IndexError_(f"{where}: a chunk of {c.doc_id} does not match its document's text; "
                                  f"rebuild it with: qa index --rebuild --store {self.spec.text}")
        sentences = [Sentence(r["doc_id"], int(r["start"]), int(r["end"])) for r in sent_rows]
        dim = int(manifest.get("encoder_dim", encoder.dim))
        vectors = np.asarray([r["vector"] for r in sent_rows], np.float32).reshape(len(sent_rows), dim)
        data = IndexData(manifest, documents, chunks, sentences, build_faiss(np.zeros((0, dim), np.float32)), vectors)
        data.store_keys = [r["key"] for r in chunk_rows]
        return data

    # --- search ------------------------------------------------------------------------------

    def dense_search(self, vector, k: int, flt: str = "") -> list[tuple[str, float]]:
        res = self._call("search", self._c("chunks"), data=[np.asarray(vector, np.float32).tolist()],
                         anns_field="vector", limit=k, filter=flt, output_fields=["key"],
                         search_params={"metric_type": "IP", "params": {"ef": max(64, k)}}, doing="search")
        return [(_pk(h), float(h["distance"])) for h in res[0]]

    def keyword_search(self, question: Question, k: int, flt: str = "", field: str = KEYWORD_FIELD
                       ) -> list[tuple[str, float]]:
        query = self._keyword_query(question, field)
        if not query:
            return []
        res = self._call("search", self._c("chunks"), data=[query], anns_field=KEYWORD_FIELDS[field], limit=k,
                         filter=flt, output_fields=["key"], search_params={"metric_type": "BM25"}, doing="search")
        # BM25 scores are ≥ 0; milvus-lite reports them negated as distances
        return [(_pk(h), abs(float(h["distance"]))) for h in res[0] if h["distance"]]

    @staticmethod
    def _keyword_query(question: Question, field: str) -> str:
        if field == "jieba":
            return question.normalized
        # each question token once, as qa.retrieve.bm25 scores it
        return " ".join(sorted(set(terms_text(question.normalized).split())))

    def hybrid_search(self, question: Question, k: int, fusion: str, field: str = KEYWORD_FIELD,
                      depth: int = DEPTH) -> list[tuple[str, float]]:
        """One ``hybrid_search`` request: dense and BM25 searches fused by Milvus's ranker."""
        pm = self._pm
        query = self._keyword_query(question, field)
        reqs = [pm.AnnSearchRequest(data=[np.asarray(question.vector, np.float32).tolist()], anns_field="vector",
                                    param={"metric_type": "IP", "params": {"ef": depth}}, limit=depth)]
        if query:
            reqs.append(pm.AnnSearchRequest(data=[query], anns_field=KEYWORD_FIELDS[field],
                                            param={"metric_type": "BM25"}, limit=depth))
        ranker = pm.RRFRanker(60) if fusion == "rrf" else pm.WeightedRanker(*[1 - ALPHA, ALPHA][:len(reqs)])
        res = self._call("hybrid_search", self._c("chunks"), reqs, ranker, limit=k, output_fields=["key"], doing="search")
        return [(_pk(h), float(h["distance"])) for h in res[0]]

    def retriever(self, kind: str, index: IndexData, fusion: str = FUSION, field: str = KEYWORD_FIELD):
        return MilvusRetriever(self, index, kind, fusion, field)


def _minmax(x: np.ndarray, lo: float | None = None) -> np.ndarray:
    lo = float(x.min()) if lo is None else min(lo, float(x.min()))
    hi = float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


class MilvusRetriever:
    """Retrieval inside Milvus: ``dense``, ``bm25`` or ``hybrid`` (fused by ``fusion``).

    ``minmax`` is the project's fusion (``qa.retrieve.hybrid``) over Milvus's scores: the dense
    and BM25 top ``DEPTH``, each candidate's missing score asked of Milvus (a filtered search),
    both sides min-max normalised, mixed with weight ``ALPHA``."""

    def __init__(self, store: MilvusStore, index: IndexData, kind: str = "hybrid", fusion: str = FUSION,
                 field: str = KEYWORD_FIELD, depth: int = DEPTH):
        if kind not in ("hybrid", "bm25", "dense"):
            raise UsageError(f"unknown retriever {kind!r}; choose one of: hybrid, bm25, dense")
        if fusion not in FUSIONS:
            raise UsageError(f"unknown Milvus fusion {fusion!r}; choose one of: {', '.join(FUSIONS)}")
        if field not in KEYWORD_FIELDS:
            raise UsageError(f"unknown Milvus keyword field {field!r}; choose one of: {', '.join(KEYWORD_FIELDS)}")
        self.store, self.kind, self.fusion, self.field, self.depth = store, kind, fusion, field, depth
        self.name = kind if kind != "hybrid" else f"milvus-{fusion}"
        self.chunks = dict(zip(index.store_keys, index.chunks))

    def _hits(self, pairs, dense=None, sparse=None) -> list[PassageHit]:
        out = []
        for key, score in pairs:
            c = self.chunks.get(key)
            if c is None:          # a row written after this pipeline loaded
                continue
            out.append(PassageHit(c, float(score), len(out),
                                  dense_score=None if dense is None else dense.get(key),
                                  sparse_score=None if sparse is None else sparse.get(key)))
        return out

    def retrieve(self, question: Question, top_k: int = 5) -> list[PassageHit]:
        if self.kind == "dense":
            pairs = self.store.dense_search(question.vector, top_k)
            return self._hits(pairs, dense=dict(pairs))
        if self.kind == "bm25":
            pairs = self.store.keyword_search(question, top_k, field=self.field)
            return self._hits(pairs, sparse=dict(pairs))
        if self.fusion != "minmax":
            return self._hits(self.store.hybrid_search(question, top_k, self.fusion, self.field, self.depth))
        return self._minmax(question, top_k)

    def _minmax(self, question: Question, top_k: int) -> list[PassageHit]:
        dense = dict(self.store.dense_search(question.vector, self.depth))
        sparse = dict(self.store.keyword_search(question, self.depth, field=self.field))
        full_sparse = len(sparse) >= min(self.depth, len(self.chunks))
        missing = [k for k in dense if k not in sparse]
        if missing:       # BM25 scores of dense-only candidates (0 when no term matches)
            sparse.update(self.store.keyword_search(question, len(missing), flt=f"key in {_quote(missing)}",
                                                    field=self.field))
        position = {k: c.chunk_id for k, c in self.chunks.items()}
        keys = sorted(set(dense) | set(sparse), key=lambda k: position.get(k, len(position)))
        if not keys:
            return []
        floor = min(dense.values()) if dense else 0.0
        d = np.array([dense.get(k, floor) for k in keys], np.float32)
        s = np.array([sparse.get(k, 0.0) for k in keys], np.float32)
        # as in HybridRetriever: its top-DEPTH by BM25 includes chunks scoring 0 when fewer match
        fused = ALPHA * _minmax(s, None if full_sparse else 0.0) + (1 - ALPHA) * _minmax(d)
        order = np.argsort(-fused, kind="stable")[:top_k]
        return [PassageHit(self.chunks[keys[i]], float(fused[i]), r, dense_score=float(d[i]), sparse_score=float(s[i]))
                for r, i in enumerate(order) if keys[i] in self.chunks]
