"""A question, checked and analysed once: its normalised text, script, what it asks for.

``make_question(" 新材料产业产值是多少 ")`` validates the text (:func:`clean_question`) and
returns the one :class:`~qa.types.Question` value that retrieval and both readers use:
``Question(text="新材料产业产值是多少", kind="amount", script="simplified", …)``; the pipeline
adds its vector. The kinds: amount, percent, count, rank, date, person, place, list, entity, span.
"""
from __future__ import annotations

import re
import unicodedata

from qa.errors import UsageError
from qa.text.normalize import HAN, detect_script, fold_width, to_simplified
from qa.types import Question

MAX_QUESTION_CHARS = 1000

# Order matters: the first matching rule wins. Patterns run on the normalised
# (simplified, half-width) question.
_KIND_RULES: list[tuple[str, re.Pattern]] = [
    ("rank", re.compile(r"第几|排名|排第|排在|名次|位列|第多少|位居|几强|多少强")),
    ("percent", re.compile(r"百分之|百分比|比例|占比|比重|增幅|增速|增长率|降幅|多少个百分点|占.{0,8}多少|增长(了)?多少|提高(了)?多少|下降(了)?多少|%")),
    ("date", re.compile(r"什么时候|何时|哪一?年|哪个?月|哪一?天|几月|几号|哪段时间|什么时间|多少年[份度]?$|时间是|年份|日期|哪个时期|起止")),
    ("count", re.compile(r"(多少|几)(个|家|项|名|人|位|只|条|件|座|所|次|批|种|类|大|张|支|户|栋|幢|届|期|款|台|套|处|片|点|年)")),
    ("amount", re.compile(r"多少|几|多大|多高|多长|多重|多远|多快|规模|金额|产值|总量|收入|投资额|面积|数量")),
    ("role", re.compile(r"(什么|哪个|何)(职务|职位|身份|头衔|官职)|担任什么|是什么人|是做什么的")),
    ("person", re.compile(r"谁|哪位|哪个人|姓名|名字是|记者是|作者|(长|主任|书记|记者|总裁|经理|教授|博士|专家|负责人)(叫|姓)什么")),
    ("place", re.compile(r"哪里|哪儿|什么地方|在哪|何处|哪个(地方|城市|省|区|县|市)|位于|地处")),
    ("list", re.compile(r"哪些|哪几|有什么|包括什么|包含什么|分别是|都有|[几两三四五六七八九十]大.*(是什么|是啥|指什么)|哪(两|三|四|五|六)")),
    ("entity", re.compile(r"什么|哪(个|家|所|座|一)|叫|名称|是啥")),
]

# Words that frame the question rather than name its content.
_QUESTION_WORDS = re.compile(
    r"请问|什么时候|什么时间|什么地方|哪一天|哪个月|是?有?(?:多少|几)[个家项名人位只条件座所次批种类张支户]?|是什么|什么|怎么样|怎样|如何|哪些|哪几|哪[一二两三四五六七八九十几]*[个家位项座所种类条大]|哪位|哪里|哪年|哪一年|"
    r"何时|为什么|是谁|谁|几|吗|呢|吧|呀|啊|了|的|是|有|在|[?？!！,，。.、:：;；\"'“”‘’()（）\s]")
# a year as questions and documents write it (2020, 2020年): the one definition, also for the readers
YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_HAN_RUN = re.compile(f"[{HAN}]+|[0-9a-z]+(?:\\.[0-9]+)?")


def question_kind(normalized: str) -> str:
    for kind, pattern in _KIND_RULES:
        if pattern.search(normalized):
            return kind
    return "span"


def key_terms(normalized: str) -> list[str]:
    """Content pieces of a normalised question (question words removed)."""
    stripped = _QUESTION_WORDS.sub(" ", normalized)
    return [m.group() for m in _HAN_RUN.finditer(stripped)]


def term_bigrams(terms: list[str]) -> list[str]:
    out: list[str] = []
    for t in terms:
        if t[0] < "\u3400" or len(t) == 1:
            out.append(t)
        else:
            out.extend(t[i:i + 2] for i in range(len(t) - 1))
    return list(dict.fromkeys(out))


_MONEY_ATTR = re.compile(r"产值|收入|总量|投资|规模|资金|利润|税收|gdp|生产总值|增加值|营收|金额|外资|销售额|预算|经费|成本")
_WH = re.compile(r"多少|几|什么时候|什么时间|何时|哪|谁|什么|怎样|如何|是否|有没有")
_FOCUS_TRIM = re.compile(r"(?:是|为|有|达到|达|约|共|一共|总共|大约|的|了|在|要|将|预计|能|可以|会|都|分别|各自|各)+$")


def focus_bigrams(normalized: str) -> list[str]:
    """The bigram just before the question word (its head noun):
    in 「新材料产业产值是多少」 the asked-for attribute is 「产值」."""
    m = _WH.search(normalized)
    if not m:
        return []
    head = _FOCUS_TRIM.sub("", normalized[:m.start()])
    run = re.search(f"[{HAN}]{{2}}$|[0-9a-z]+$", head)
    if not run:
        # the wh-word opens the question (「谁是…」): take what follows it
        tail = re.match(f"(?:是|为|有)?([{HAN}]{{2,4}})", normalized[m.end():])
        word = tail.group(1) if tail else ""
    else:
        word = run.group()
    return term_bigrams([word]) if word else []


def clean_question(question) -> str:
    """Validate a question: a non-empty string of at most ``MAX_QUESTION_CHARS``.

    Control characters and lone surrogates become spaces; surrounding space is
    dropped. Raises :class:`UsageError` with a message in Chinese.
    """
    if not isinstance(question, str):
        raise UsageError("问题必须是文本")
    question = question.encode("utf-8", "replace").decode("utf-8", "replace") if re.search(
        r"[\ud800-\udfff]", question) else question
    question = "".join(" " if unicodedata.category(c) in ("Cc", "Cs", "Co") else c for c in question).strip()
    if not question:
        raise UsageError("问题为空，请输入一个问题")
    if len(question) > MAX_QUESTION_CHARS:
        raise UsageError(f"问题太长：{len(question)} 个字符，上限 {MAX_QUESTION_CHARS} 个")
    return question


def make_question(text) -> Question:
    """The question a user asked, validated and analysed (no vector yet)."""
    return analyze_question(clean_question(text))


def analyze_question(question: str) -> Question:
    """What an already clean question asks for (one call of the normaliser)."""
    simplified = to_simplified(question)
    norm = fold_width(simplified)              # == normalize(question), the script check reuses the first half
    kind = question_kind(norm)
    terms = key_terms(norm)
    unit = ""
    m = re.search(f"(?:多少|几)([{HAN}])", norm)
    if m and kind in ("count", "amount"):
        # 多少人民币 / 多少钱 ask for money, not for people
        money = norm.startswith(("人民币", "钱"), m.start(1))
        unit, kind = ("元", "amount") if money else (m.group(1), kind)
    if kind == "amount" and not unit and _MONEY_ATTR.search(norm):
        unit = "元"   # 产值、收入、投资 are sums of money: prefer 亿元 over 家
    return Question(text=question, normalized=norm, kind=kind, script=detect_script(question, simplified),
                        terms=terms, bigrams=term_bigrams(terms), years=YEAR.findall(norm), unit=unit,
                        plural=bool(re.search(r"分别|各(是|为|有)|各自", norm)), focus=focus_bigrams(norm))
