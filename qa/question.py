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


def _before_wh(normalized: str):
    """``(wh-word match, the text before it without copulas and particles)``, or ``(None, "")``:
    where the question's head noun stands (「新材料产业产值」 of 「新材料产业产值是多少」)."""
    m = _WH.search(normalized)
    return (m, _FOCUS_TRIM.sub("", normalized[:m.start()])) if m else (None, "")


def focus_bigrams(normalized: str) -> list[str]:
    """The bigram just before the question word (its head noun):
    in 「新材料产业产值是多少」 the asked-for attribute is 「产值」."""
    m, head = _before_wh(normalized)
    if not m:
        return []
    run = re.search(f"[{HAN}]{{2}}$|[0-9a-z]+$", head)
    if not run:
        # the wh-word opens the question (「谁是…」): take what follows it
        tail = re.match(f"(?:是|为|有)?([{HAN}]{{2,4}})", normalized[m.end():])
        word = tail.group(1) if tail else ""
    else:
        word = run.group()
    return term_bigrams([word]) if word else []


# What the head noun just before the wh-word measures (「常住人口是多少」: people; 「产值是多少」: money).
# The readers hold an answer against it: a figure in 元 does not say how many people live somewhere.
# Of 282 answerable public questions whose head noun is here and whose gold answer carries a unit
# (CMRC 2018, DRCD test, security news, CAIL, DuReader-Checklist, SQuAD-zh), none contradicts it;
# of 405 with such a head noun, none (python -m tools.reader.constraints).
HEAD_DIMENSIONS = {
    "money": "经济总量 产值 收入 利润 投资 税收 营收 金额 资金 工资 价格 成本 预算 经费 费用 票价 房价 收益 奖金 罚款 罚金 "
             "赔偿 补贴 薪酬 售价 造价 市值 资产 融资 存款 贷款 gdp 总值 增加值 销售额 营业额 总额 租金 价值 估值 "
             "身价 票房",
    "people": "人口 人数 员工 职工 学生 游客 居民 会员 旅客 观众 乘客 选民 信徒 教徒 士兵 兵力 球迷 用户",
    "area": "面积 占地",
    "length": "长度 全长 距离 里程 身高 高度 海拔 深度 宽度 直径 半径 周长",
    "weight": "重量 体重",
}
_HEAD_DIMENSION = {word: dim for dim, words in HEAD_DIMENSIONS.items() for word in words.split()}


# a share or a rate asks for a percentage: 「城镇化率是多少」「占比多大」; rates measured in other units
# (汇率 in 元, 功率 in 瓦, 频率 in 赫兹) are not shares
_RATIO_HEAD = re.compile(r"(?:比重|比例|占比|百分比|份额|(?<![汇功频速码帧])率)$")
# the question's own words ask for a percentage (「增长了百分之几」)
_ASKS_SHARE = re.compile(r"百分之(?:几|多少)|百分比|(?:多少|几)个?百分点|几成")
# the measuring question words: the noun before them is what is measured (「占地多大」「经济总量有多大」)
_HOW_MUCH = re.compile(r"多少|几|多大|多高|多长|多重|多远|多宽|多深")


def _dimension_of(noun: str) -> str:
    return next((_HEAD_DIMENSION[noun[-n:]] for n in (4, 3, 2) if noun[-n:] in _HEAD_DIMENSION), "")


def head_dimension(normalized: str) -> str:
    """What the question's head noun measures ("" when it is none of ``HEAD_DIMENSIONS``): the
    noun before the question word (「常住人口是多少」, 「占地多大」) or, where the question word
    comes first, the noun after it (「实现了多少利润」); a share or rate (「城镇化率」) is "ratio"."""
    if _ASKS_SHARE.search(normalized):
        return "ratio"
    _, head = _before_wh(normalized)
    found = _dimension_of(head)
    if found:
        return found
    m = _HOW_MUCH.search(normalized)
    if not m:
        return ""
    before = _FOCUS_TRIM.sub("", normalized[:m.start()])
    if _RATIO_HEAD.search(before):
        return "ratio"
    # the noun right after the question word (「多少利润」), not a classifier's (「几个直径18米的球体」)
    after = re.match(f"(?![个只位名项家件条种类次批座所])[{HAN}a-z]{{2,4}}", normalized[m.end():])
    return _dimension_of(before) or (_dimension_of(after.group()[:2]) or _dimension_of(after.group()[:3])
                                     if after else "")


# the figure a question asks for: which year, how long, or how many / how much (多少 or 几 as its only
# question word: 「哪几个方面」 and 「几位科学家发现了什么」 ask for things, 「此前几个月」 is no question word)
_ASKS_YEAR = re.compile(r"哪一?年|何年|什么年份|哪个年份|几几年")
_ASKS_DURATION = re.compile(r"多久|多长时间|多少时间|多长的时间")
_ASKS_NUMBER = re.compile(r"多少|(?<![哪那这好前后十])几(?![乎])")
_OTHER_WH = re.compile(r"什么|谁|哪|怎|如何|为何|何时|何地")


def asks_figure(kind: str, normalized: str) -> str:
    """"year" (「哪一年」), "duration" (「多久」), "number" (多少 or 几 as the only question word of an
    amount, count or percent question) or ""."""
    if _ASKS_YEAR.search(normalized):
        return "year"
    if _ASKS_DURATION.search(normalized):
        return "duration"
    if kind in ("amount", "count", "percent") and _ASKS_NUMBER.search(normalized) and not _OTHER_WH.search(normalized):
        return "number"
    return ""


# A place a question names: two characters before an administrative suffix (宁海县, 上虞区, 北京市),
# unless the character before the suffix makes an ordinary word with it (城市, 辖区, 乡镇, 撤县) or the two
# are function words (多少个村, 哪个省), and it must start the question or follow a word that ends before it.
# Of 485 answerable public questions naming such a place (CMRC 2018, DRCD test, security news, CAIL,
# DuReader-Checklist, SQuAD-zh training sets), 4 name one that their whole article lacks (麻省 for an article
# that says 马萨诸塞州; 「按地理区」 read as a place); of 45 unanswerable ones, 7 (宁海县, 上饶市).
_ADMIN_SUFFIX = re.compile(r"省|市|县|区|镇|乡|村|港")
_NOT_SUFFIX = frozenset("县城 市场 区域 区间 区别 区分 镇定 镇压 乡间".split())     # the suffix starts another word
_BEFORE_PLACE = frozenset("省市县区镇乡村港州国年月日的在和与及或从到于对是")
_NOT_PLACE_CHARS = frozenset("个些哪什么几一这那每各该本全此其的在和与及或了是为有到从向于对把被将给等多少")
_ORDINARY = frozenset(
    "城市 都市 超市 股市 楼市 上市 夜市 集市 菜市 门市 车市 开市 闹市 街市 熊市 牛市 黑市 早市 "
    "地区 社区 小区 景区 园区 城区 市区 辖区 山区 灾区 牧区 街区 特区 新区 发区 护区 治区 校区 郊区 林区 矿区 军区 "
    "战区 选区 营区 分区 政区 东区 西区 南区 北区 中区 大区 场区 住区 疫区 片区 老区 湾区 试区 验区 范区 "
    "开区 税区 贸区 业区 游区 务区 览区 "
    "郡县 州县 撤县 设县 属县 "
    "城镇 乡镇 小镇 重镇 古镇 集镇 村镇 名镇 强镇 "
    "城乡 家乡 故乡 老乡 同乡 异乡 下乡 回乡 水乡 他乡 思乡 返乡 离乡 "
    "农村 乡村 山村 渔村 "
    "外省 节省 反省 设省 建省 分省 "
    "渔港 军港 商港 空港 油港 良港 出港 进港 入港 离港 回港 抵港 来港 赴港 香港 澳港".split())


def named_places(normalized: str) -> list[str]:
    """The places a question names, as the two characters before the suffix (宁海 for 宁海县)."""
    out = []
    for run in re.finditer(f"[{HAN}]+", normalized):
        text = run.group()
        for m in _ADMIN_SUFFIX.finditer(text):
            i = m.start()
            name = text[i - 2:i] if i >= 2 else ""
            if not name or i > 2 and text[i - 3] not in _BEFORE_PLACE:
                continue    # 「镇距离县城」: the name must start the question or follow a word that ends before it
            if text[i:i + 2] in _NOT_SUFFIX:
                continue
            if name[1] + m.group() not in _ORDINARY and not any(c in _NOT_PLACE_CHARS for c in name):
                out.append(name)
    return list(dict.fromkeys(out))


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
                        plural=bool(re.search(r"分别|各(是|为|有)|各自", norm)), focus=focus_bigrams(norm),
                        dimension=head_dimension(norm), figure=asks_figure(kind, norm), places=named_places(norm))
