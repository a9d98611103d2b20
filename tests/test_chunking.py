from pathlib import Path

from qa.text.chunking import ChunkSpec, chunk_sentences, is_furniture_line, split_sentences

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def test_sentences_end_at_chinese_punctuation_and_keep_closing_quotes():
    text = "他说:“发展是第一要务。”我们同意!下一步怎么办?继续;努力……\n新的一行"
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "他说:“发展是第一要务。”", "我们同意!", "下一步怎么办?", "继续;", "努力……", "新的一行"]


def test_markdown_table_debris_and_image_links_are_not_sentences():
    text = "![]() |\n|\n索引号: | 00259077X/2018-45108 |\n正文第一句。 |\n||\n"
    got = [text[s:e] for s, e in split_sentences(text)]
    assert got == ["索引号:", "00259077X/2018-45108", "正文第一句。"]
    assert all("|" not in g and "![" not in g for g in got)


def test_newspaper_metadata_line_is_furniture():
    line = ("浙江日报 专版 00011 上虞:全面建设 2021-02-23 浙江日报2021-02-2300005;"
            "浙江日报2021-02-2300007;浙江日报2021-02-2300010 2 2021年02月23日 星期二")
    assert is_furniture_line(line)
    assert not is_furniture_line("2020年实现工业总产值604.5亿元,增长16.7%。")


def test_long_sentence_is_cut_at_a_comma():
    text = ("甲乙丙丁戊己庚辛," * 40) + "。"
    spans = split_sentences(text, max_len=100)
    assert all(e - s <= 100 for s, e in spans)
    assert "".join(text[s:e] for s, e in spans) == text


def test_chunks_are_bounded_overlap_by_one_sentence_and_cover_every_sentence():
    text = (SEEDS / "001_c227e93b7f7b0093.txt").read_text(encoding="utf-8")
    sentences = split_sentences(text)
    spec = ChunkSpec(max_chars=240, overlap_sentences=1)
    chunks = chunk_sentences(sentences, spec)
    covered = set()
    for (s, e, i, j), nxt in zip(chunks, chunks[1:] + [None]):
        assert (s, e) == (sentences[i][0], sentences[j - 1][1])
        assert e - s <= spec.max_chars or j - i == 1
        covered.update(range(i, j))
        if nxt is not None:
            assert nxt[2] == j - 1 or nxt[2] == i + 1   # one sentence shared with the next chunk
    assert covered == set(range(len(sentences)))


def test_seed_furniture_never_reaches_a_sentence():
    for path in SEEDS.glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        for s, e in split_sentences(text):
            assert "|" not in text[s:e]
            assert "浙江日报2021-02-23" not in text[s:e]
            assert text[s:e] == text[s:e].strip()
