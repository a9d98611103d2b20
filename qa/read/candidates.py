"""Typed candidate spans in a sentence: amounts, percentages, counts, ranks,
dates, people, places, organisations and enumerations.

``extract_candidates(norm, start, end)`` runs on the *normalised* document text
(same offsets as the original) and yields ``(start, end, kind)`` spans inside
``[start, end)``. The reader maps them back to the original text by offset.
"""
from __future__ import annotations

import re

from qa.question import YEAR
from qa.text.normalize import HAN

# how far before the cited sentence a year or a role still applies to it
# (「2020年，全区……。其中新材料产业……」)
CONTEXT_BEFORE = 80
# a question's year this near the cited sentence (either side) may still be the year it belongs to
YEAR_NEAR = 200


def year_evidence(years, normalized: str, sentence_start: int, sentence_end: int) -> tuple[bool, bool]:
    """``(match, conflict)`` between the years a question names and the years its cited sentence
    names (with the ``CONTEXT_BEFORE`` characters before it, in the normalised document text):
    a match when one of the question's years is there; a conflict when years are there, none is
    the question's, and the question's years do not stand within ``YEAR_NEAR`` characters either
    — the text gives another year's figure (asked for 2024, it states 2025's). Without that last
    condition the rule withheld 41 of 1,565 right answers to public questions naming a year
    (「2015年…同年…」), with it 11, and it still catches 95.6 % of the same questions moved to a
    year their paragraph does not name (``python -m tools.reader.constraints``)."""
    asked = set(years)
    if not asked:
        return False, False
    here = set(YEAR.findall(normalized[max(0, sentence_start - CONTEXT_BEFORE):sentence_end]))
    match = bool(here & asked)
    if match or not here:
        return match, False
    near = set(YEAR.findall(normalized[max(0, sentence_start - YEAR_NEAR):sentence_end + YEAR_NEAR]))
    return False, not (near & asked)


_NUM = r"(?:\d+(?:[.,]\d+)*|[零〇一二两三四五六七八九十百千]+)"
_RANGE = rf"{_NUM}(?:\s*[-~～至到]\s*{_NUM})?"
_MAG = r"(?:[十百千万亿]|万亿|千万|百万)?"
_MEASURE = (r"(?:平方公里|平方千米|平方米|万平方米|公顷|万亩|亩|万吨|吨|公里|千米|米|千瓦时|千瓦|兆瓦|万千瓦|立方米|度|"
            r"标准箱|标箱|千克|公斤)")
_COUNT_UNIT = (r"(?:人次|家|个|项|名|人|位|只|条|件|座|所|次|批|种|类|张|支|户|栋|幢|届|期|款|台|套|处|片|"
               r"大|点|倍|年|天|月|周|小时|分钟|岁|辆|艘|架|部|篇|本|场|轮|代|级|星|强)")
# after 万 or 亿 only these count (「3.7万人」, 「86万人次」, 「12万户」); a character that merely
# starts the next word does not (「50亿人民币」, 「1350亿位居」, 「1000亿大关」, 「3亿年均」)
_BIG = r"(?:万亿|千万|百万|[万亿])"
_BIG_COUNT_UNIT = (r"(?:人次|人(?!民)|户|个|家|项|名|辆|台|套|件|只|头|株|座|所|条|艘|架|张|次|册|位(?!居|列|于)|"
                   r"年(?![均度底初末产]))")
# a bare 亿 or 万 is an amount only where no such unit follows it: 「3.7万人」 counts people (COUNT),
# 「418万标准箱」 measures containers (_MEASURE); cut at 万 they lose what they count
_MONEY = rf"(?:亿元|万元|千元|元|亿美元|万美元|美元|(?:亿|万)(?!{_BIG_COUNT_UNIT}|{_MEASURE}))"
_QUALIFIER_BEFORE = r"(?:约|近|超过|超|逾|突破|达到|达|将近|接近|不少于|不低于|至少|力争)?"
_QUALIFIER_AFTER = r"(?:余|多|以上|左右|以内|以下|上下)?"

AMOUNT = re.compile(rf"{_RANGE}{_QUALIFIER_AFTER}{_MAG}(?:{_MONEY}|{_MEASURE}){_QUALIFIER_AFTER}")
PERCENT = re.compile(rf"(?:{_RANGE}\s*%|百分之[零一二两三四五六七八九十百点]+|{_NUM}个百分点|{_NUM}成){_QUALIFIER_AFTER}")
COUNT = re.compile(rf"{_RANGE}{_QUALIFIER_AFTER}(?:{_BIG}{_BIG_COUNT_UNIT}|[十百千]?{_COUNT_UNIT}){_QUALIFIER_AFTER}")
RANK = re.compile(rf"(?:第{_NUM}(?:位|名|批|届)?|前{_NUM}(?:位|名)?|{_NUM}强|首位|榜首|首批)")
DATE = re.compile(
    r"(?:\d{4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}(?:\s+\d{1,2}:\d{2})?|"
    r"(?:(?:19|20)\d{2}|[一二〇零]{4})年(?:底|初|末|上半年|下半年|前|以来|起)?(?:\d{1,2}月(?:\d{1,2}日)?(?:份)?)?"
    r"(?:[-~至到](?:(?:19|20)\d{2}年)?(?:\d{1,2}月)?(?:\d{1,2}日)?)?|"
    r"\d{1,2}月\d{1,2}日|\d{1,2}月(?:份|底|初)|"
    r"\"?[十一二三四五]+五\"?(?:时期|期间|期末|以来|规划)?|今年|去年|明年|近年来|近几年|目前)")
# Roles that precede a person's name (职务 + 姓名), and verbs of speech after a name.
_ROLE = (r"(?:副?主任|副?书记|副?局长|副?区长|副?市长|副?县长|副?省长|董事长|总经理|副?总裁|负责人|记者|秘书长|"
         rf"执行副?院长|副?会长|副?理事长|党委书记|博士|总工程师|首席[{HAN}]{{2,3}}|"
         r"院长|副?院长|教授|院士|专家|委员|副?部长|处长|科长|主席|总监|创始人|经理|厂长|所长|校长|干部)")
_SPEECH = r"(?:介绍|表示|说|称|指出|认为|告诉|坦言|感叹|自豪|透露|强调)"
PERSON = re.compile(rf"{_ROLE}\s?(?P<name>[{HAN}]{{2,3}}?)(?=[,。:、\s\])】」]|{_SPEECH}|博士|教授|院士|[等对在的是和与也还就都曾已将]|$)"
                    rf"|(?P<name2>[{HAN}]{{2,3}})(?=(?:介绍|表示|告诉记者|指出|坦言|透露|强调)[,:。])")

ROLE_WORD = re.compile(_ROLE)
ROLE_BEFORE = 12            # characters before a name where its role stands (董事长王建华)


def asked_roles(question_normalized: str) -> frozenset[str]:
    """The roles a question names (总经理 in 「集团的总经理是谁」; 副秘书长 with its 副)."""
    return frozenset("副" + m.group() if m.start() and question_normalized[m.start() - 1] == "副"
                     and not m.group().startswith("副") else m.group()
                     for m in ROLE_WORD.finditer(question_normalized))


def role_conflict(asked: frozenset[str], normalized: str, sentence_start: int, sentence_end: int,
                  span_start: int) -> bool:
    """The question asks for a role (``asked``: 总经理) that its cited sentence (with the
    ``CONTEXT_BEFORE`` characters before it) never names, while another role stands right before
    the span (「董事长王建华」): the text names the holder of a different role. Of 393 answerable
    public questions naming a role (CMRC 2018, DRCD, security news, CAIL, DuReader-Checklist,
    SQuAD2-zh training sets), one right answer looks like this."""
    if not asked:
        return False
    around = normalized[max(0, sentence_start - CONTEXT_BEFORE):sentence_end]
    # 主任 asked, only 副主任 written: the deputy is another role
    if any(re.search(re.escape(r) if r.startswith("副") else f"(?<!副){re.escape(r)}", around) for r in asked):
        return False
    return bool(ROLE_WORD.search(normalized[max(sentence_start, span_start - ROLE_BEFORE):span_start]))


# measure words that count things, in classes of words used for the same things (人 / 名 / 位);
# 个 (said of anything) and units of time or money are left out: 几个 vs 3人 or 几天 vs 第6周
# is not a contradiction
MEASURE_CLASSES = (frozenset("人名位员"), frozenset("家所座处"), frozenset("项件条"), frozenset("种类款"),
                   frozenset("栋幢座"), frozenset("次场届轮期批"), frozenset("辆台部架艘"), frozenset("张片"),
                   frozenset("只头匹"), frozenset("户"), frozenset("篇本部"))
_MEASURE_WORDS = "".join(sorted(set().union(*MEASURE_CLASSES)))
_COUNTED = re.compile(rf"{_NUM}\s*(?:余|多)?[万亿]?([{_MEASURE_WORDS}])")
_COUNTED_ANY = re.compile(rf"{_NUM}\s*(?:余|多)?[万亿]?[个{_MEASURE_WORDS}]")     # things counted, 个 too


def measure_conflict(unit: str, span_normalized: str) -> bool:
    """The question counts one kind of thing (多少**所**学校) and the span counts only another
    (3.7万**人**): the text gives a different figure. Of 697 answerable public questions asking
    for a measure word, the rule holds against the gold answer of one (「几项罪名」 → 「一人犯两罪」)."""
    if not any(unit in c for c in MEASURE_CLASSES):
        return False
    counted = _COUNTED.findall(span_normalized)
    return bool(counted) and not any(unit in c and u in c for u in counted for c in MEASURE_CLASSES)


# units that say what a figure measures, by the dimensions of qa.question.HEAD_DIMENSIONS
UNIT_DIMENSIONS = {
    "money": "元|美元|欧元|港元|港币|日元|英镑|澳门元|新台币|台币",
    "people": "人次|人|名|位",
    "area": "平方米|平方公里|平方千米|平方英里|公顷|亩|平米",
    "length": "公里|千米|厘米|毫米|米|英里|里",
    "weight": "吨|公斤|千克|克|斤",
}
_UNIT_DIMENSION = {u: dim for dim, units in UNIT_DIMENSIONS.items() for u in units.split("|")}
_MEASURED = re.compile(rf"{_NUM}\s*(?:余|多)?(?:万亿|千万|百万|[万亿千百])?\s*("
                       + "|".join(sorted(_UNIT_DIMENSION, key=len, reverse=True)) + ")")


def dimension_conflict(dimension: str, span_normalized: str, question_kind: str = "") -> bool:
    """The question's head noun measures one thing (人口: people) and the span's figures only
    another (64亿元: money), or a sum of money is asked for and the span is a percentage (税收 →
    12%). Of 282 answerable public questions with such a head noun and a unit in the gold answer,
    none contradicts it; percentages only count against money, and not when the question asks
    for a share (「占国内生产总值的多少」, a percent question)."""
    if not dimension:
        return False
    found = {_UNIT_DIMENSION[u] for u in _MEASURED.findall(span_normalized)}
    if dimension == "ratio":      # a share asked for (城镇化率): a sum, a headcount or an area is not one
        return bool(found or _COUNTED_ANY.search(span_normalized)) and not PERCENT.search(span_normalized)
    if not found and dimension != "people" and question_kind in ("amount", "percent") and (
            _COUNTED_ANY.search(span_normalized) or DATE.fullmatch(span_normalized.strip())):
        return True               # a sum or an area asked for, things counted or a date (占地多大 → 65个, 5月)
    if not found and dimension == "money" and question_kind != "percent" and PERCENT.search(span_normalized):
        return True
    return bool(found) and dimension not in found


_TIME_WORD = re.compile(r"[天日月年周时分秒季旬代世辈期晚夜宿]|星期|礼拜|半|今|马上|立即|随时|当场")
# a figure: digits, numerals (also the financial 壹…拾), or letters and masks as in codes and plates (KK, 浙G×××)
_FIGURE = re.compile(r"[\da-z×*]|[零〇一二两三四五六七八九十百千万亿半数几壹贰叁肆伍陆柒捌玖拾佰仟]")


def figure_absent(asked: str, span_normalized: str) -> bool:
    """The question asks for a figure (``Question.figure``) and the span holds none: 「哪一年开始担任」
    → 「杭州湾上虞」, 「总投资是多少」 → 「面积」 (a year needs a digit, a numeral or 年; a number a
    digit or a numeral; a duration (多久) a word of time). Of 3,232 answerable questions of the
    native public training sets asking for a figure (CMRC 2018, DRCD, security news, CAIL,
    DuReader-Checklist), 13 gold answers hold none (「婚后未生育子女」 for 「生了几个子女」;
    ``python -m tools.reader.constraints``); of 1,511 machine-translated ones (SQuAD-zh), 53 —
    「多少」 translating a qualitative "how much" (「很少」, 「高」)."""
    if asked == "year":
        return not (_FIGURE.search(span_normalized) or "年" in span_normalized)
    if asked == "duration":
        return not _TIME_WORD.search(span_normalized)
    return asked == "number" and not _FIGURE.search(span_normalized)


def place_absent(places, document_normalized: str) -> bool:
    """The question names a place (宁海 of 宁海县) that the cited document never names: the
    document's figure is another place's (asked about 北京市, it is 上虞's)."""
    return any(p not in document_normalized for p in places)


BYLINE = re.compile(rf"^[{HAN}]{{2,3}}(?:[\s\u00a0\u3000]+[{HAN}]{{2,3}})+$")
_ORG_SUFFIX = (r"(?:有限公司|股份有限公司|公司|集团|研究院|研究所|中心|基地|产业园|工业园|园区|平台|大学|学院|"
               r"实验室|协会|银行|医院|学校|小镇|新城|开发区|经开区|高新区|项目|工程|委员会|管委会|办公室|"
               r"政府|部门|产业链|产业|集群|名片|战略|计划|体系|模式|机制|行动|工作站|孵化器|联盟)")
ORG = re.compile(rf"[{HAN}A-Za-z0-9\"“”·]{{2,18}}?{_ORG_SUFFIX}")
ROLE = re.compile(rf"[{HAN}]{{0,10}}?{_ROLE}(?:、[{HAN}]{{0,10}}?{_ROLE})*")
QUOTED = re.compile(r"\"[^\"\n]{1,30}\"")
ENUM_ITEM = r"[^、,。;:!?\s\"]{1,16}"
AMOUNT_LIST = re.compile(rf"(?:{AMOUNT.pattern}|{PERCENT.pattern})(?:\s*(?:、|和|及|与|,)\s*(?:{AMOUNT.pattern}|{PERCENT.pattern}))+")
ENUMERATION = re.compile(rf"\"?{ENUM_ITEM}\"?(?:、\"?{ENUM_ITEM}\"?)+(?:(?:和|及|以及|与)\"?{ENUM_ITEM}\"?)?"
                         r"|[^、,。;:!?\s\"+]{1,12}(?:\+[^、,。;:!?\s\"+]{1,12})+")
CLAUSE = re.compile(r"[^,;:。!?]{2,60}")
_LEAD_TRIM = re.compile(r"^(?:并|且|还|也|都|就|是|为|有|在|和|及|与|其中|包括|主要|已|已经|分别|等|将)+")

PATTERNS = {"amount": AMOUNT, "percent": PERCENT, "count": COUNT, "rank": RANK, "date": DATE,
            "person": PERSON, "org": ORG, "quoted": QUOTED, "list": ENUMERATION, "role": ROLE,
            "amounts": AMOUNT_LIST}

# Which extracted kinds can answer which question kinds.
ACCEPTS = {
    "amount": ("amount", "count", "percent", "amounts"),
    "count": ("count", "amount", "amounts"),
    "percent": ("percent", "amounts"),
    "rank": ("rank",),
    "date": ("date",),
    "person": ("person", "gap", "byline"),
    "role": ("role", "gap"),
    "place": ("gap", "org", "quoted", "clause"),
    "list": ("list", "gap", "quoted", "org", "clause"),
    "entity": ("gap", "org", "quoted", "list", "clause", "person"),
    "span": ("gap", "clause", "org", "quoted", "list", "amount", "count", "percent", "date"),
}


_LIST_HEAD = re.compile(r".*?(?:将|把|包括|包含|形成了?|分别是|分别为|主要有|主要是|重点是|聚焦|围绕|涵盖|打造|培育|发展|即|为|是|有|了)")
_LIST_TAIL = re.compile(r"(?:等|[一二两三四五六七八九十几]+大|[一二两三四五六七八九十几]+个|…+|\.{3,}).*$")


_GROUP_END = re.compile(r"[一二两三四五六七八九十几]+[大个项种类条张]")


def split_enumeration(norm: str, s: int, e: int) -> list[tuple[int, int]]:
    """An enumeration that runs on past a closing count phrase ("…三大产业链和…")
    is two enumerations; split it there."""
    parts, pos = [], s
    for m in _GROUP_END.finditer(norm, s, e):
        nxt = norm.find("、", m.end(), e)
        if nxt < 0:
            break
        if norm.rfind("、", pos, m.start()) >= 0:
            parts.append((pos, m.start()))
            conn = re.compile(r"[^、]{0,8}?(?:和|及|与|,)").match(norm, m.end(), nxt)
            pos = conn.end() if conn else m.end()
    parts.append((pos, e))
    return parts


def trim_enumeration(norm: str, s: int, e: int) -> tuple[int, int]:
    """Cut the verb before the first item and the "等三大产业链" after the last."""
    sep = "、" if "、" in norm[s:e] else "+"
    first_end = norm.find(sep, s, e)
    if first_end > 0:
        m = _LIST_HEAD.match(norm, s, first_end)
        if m and first_end - m.end() >= 2:
            s = m.end()
    last_start = norm.rfind(sep, s, e) + 1
    m = _LIST_TAIL.search(norm, last_start, e)
    if m and m.start() - last_start >= 2:
        e = m.start()
    return s, e


_DIGIT = re.compile(r"\d")


def _word_number(text: str) -> bool:
    """A quantity written without digits (一年, 八条, 千亿): usually idiom, not data."""
    return not _DIGIT.search(text)


def extract_candidates(norm: str, start: int, end: int, kinds=None) -> list[tuple[int, int, str]]:
    """Typed spans in ``norm[start:end]`` (a sentence of normalised text)."""
    out: list[tuple[int, int, str]] = []
    kinds = kinds or list(PATTERNS) + ["clause", "byline"]
    dates = [m.span() for m in DATE.finditer(norm, start, end)]
    for kind in kinds:
        if kind == "clause":
            for m in CLAUSE.finditer(norm, start, end):
                s, e = m.start(), m.end()
                lead = _LEAD_TRIM.match(norm, s, e)
                if lead:
                    s = lead.end()
                while s < e and norm[s].isspace():
                    s += 1
                while e > s and norm[e - 1].isspace():
                    e -= 1
                if e - s >= 2:
                    out.append((s, e, "clause"))
            continue
        if kind == "gap":
            continue  # needs the question: see qa.read.typed_span.gap_candidates
        if kind == "byline":
            if BYLINE.match(norm[start:end].strip()):
                out.append((start, end, "person"))
            continue
        for m in PATTERNS[kind].finditer(norm, start, end):
            s, e = m.span()
            if kind == "person":
                s, e = m.span("name") if m.group("name") else m.span("name2")
            if kind == "list":
                for ps, pe in split_enumeration(norm, s, e):
                    ps, pe = trim_enumeration(norm, ps, pe)
                    while ps < pe and not norm[ps].strip(" \"和及与"):
                        ps += 1
                    while pe > ps and not norm[pe - 1].strip(" \""):
                        pe -= 1
                    if "、" in norm[ps:pe] or "+" in norm[ps:pe]:
                        out.append((ps, pe, kind))
                continue
            if kind in ("count", "amount", "amounts") and any(
                    ds < e and s < de for ds, de in dates):
                continue  # "2019年1月" is a date, not a count of months
            if kind == "org":
                lead = _LEAD_TRIM.match(norm, s, e)
                if lead and e - lead.end() >= 2:
                    s = lead.end()
            text = norm[s:e]
            if kind in ("amount", "percent", "amounts") and _word_number(text) and "百分之" not in text:
                continue
            if kind == "count" and re.fullmatch(r"(?:19|20)\d{2}年", text):
                continue  # a year is a date, not a count of years
            out.append((s, e, kind))
    return out
