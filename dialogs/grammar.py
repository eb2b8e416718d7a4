"""A small grammar of how people say how satisfied they are (see grammar.md beside this file).

A reply is read as *evidence*: every menu digit, every satisfaction phrase (满意 with the words
in front of it and after it) and every judgement word (不错, 太差了, 好评 …). Each piece says
which grades it is compatible with (`fits`) and, for a digit or a phrase that names a grade
outright, which grade it names (`reading`). The parsers in parse.py then decide: one grade named,
compatible with everything else in the reply, or nothing at all (the person is asked again).

Why evidence rather than a list of strings: a negation changes the phrase it stands in front of,
not the string it happens to contain. "不是非常满意" contains "非常满意" and is not that grade;
"没什么不满意" contains "不满意" and is no complaint. The phrase is read right to left from its
head word, one known word at a time, and anything the grammar does not know in the same clause
that could negate (不, 没, 无 …) makes the phrase uncertain instead of being skipped.

Every function is total (any string in, never an exception) and linear in the text's length.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

from dialogs.grades import Grade

VS, S, B, D, VD = (Grade.VERY_SATISFIED, Grade.SATISFIED, Grade.BASICALLY_SATISFIED, Grade.DISSATISFIED,
                   Grade.VERY_DISSATISFIED)
ALL = frozenset(Grade)
GOOD = frozenset({VS, S, B})
BAD = frozenset({D, VD})
MAX_READ = 2000  # characters: a reply longer than this is a letter, not an answer to a menu


class Cat(Enum):
    """What a word does to the satisfaction word it stands in front of."""

    NEG = "neg"  # 不, 没有, 不太, 不是很: a plain negation (the softeners 太/很/怎么 belong to it)
    HEDGE_NEG = "hedge_neg"  # 说不上, 谈不上, 算不上, 不算: denies without saying how far
    TOTAL = "total"  # 一点也不, 完全不, 根本不: denies entirely
    INT = "int"  # 非常, 十分, 特别: the strong degree of the scale's 非常
    INT_WEAK = "int_weak"  # 相当: strong, but 满意 would not be wrong either
    PLAIN = "plain"  # 很, 真, 确实: Chinese's ordinary degree adverb (很满意 = 满意, not 非常)
    MILD = "mild"  # 挺, 蛮: quite
    FAIR = "fair"  # 比较, 较为: fairly (满意, or 基本满意)
    BASIC = "basic"  # 基本, 基本上: the scale's own 基本
    HEDGE = "hedge"  # 还算, 勉强, 大体: between 满意 and 基本满意, not asserted
    SLIGHT = "slight"  # 有点, 有些: 有点满意 is not asserted, but 有点不满意 is a complaint
    EPISTEMIC = "epistemic"  # 可能, 也许, 应该: not asserted at all
    CLEAR = "clear"  # 都, 也, 觉得, 令人, 我: changes nothing


_NEGATIONS = (Cat.NEG, Cat.HEDGE_NEG, Cat.TOTAL)

# The words a satisfaction phrase may hold in front of its head, by what they do. Traditional
# characters are folded to simplified before reading (_FOLD), so each word is listed once.
_WORDS: dict[Cat, tuple[str, ...]] = {
    Cat.NEG: (
        "不", "没", "没有", "未", "未能", "没能", "不曾", "并不", "并没", "并没有", "并非", "不是", "并不是", "不会",
        "不能", "无法", "难以", "很难", "难", "不太", "不大", "不怎么", "没怎么", "不咋", "不咋么", "不甚", "不够",
        "不很", "不是很", "没有很", "没那么", "不那么", "不是那么", "没有那么", "不是太", "没有太", "不怎样",
        "不是怎么", "不太会", "没太", "没什么", "not", "never", "isn't", "wasn't", "aren't", "weren't", "don't",
        "didn't", "not really", "not so", "not that", "not too", "not quite", "hardly",
    ),
    Cat.HEDGE_NEG: (
        "说不上", "谈不上", "算不上", "称不上", "不算", "不能说", "不好说", "不敢说", "谈不到", "说不到", "不一定",
        "未必", "不算是", "不算太", "不见得", "说不上是", "谈不上是", "算不上是", "不能算", "不好讲",
    ),
    Cat.TOTAL: (
        "一点也不", "一点都不", "一点儿也不", "一点儿都不", "一点不", "完全不", "完全没有", "根本不", "根本没",
        "根本没有", "根本就不", "毫不", "丝毫不", "压根不", "压根没", "压根儿不", "绝不", "极不", "全然不", "一点也没",
        "一点都没", "not at all", "not in the least",
    ),
    Cat.INT: (
        "非常", "十分", "特别", "特", "极其", "极为", "极", "超级", "超", "万分", "无比", "太", "贼", "巨", "老", "最",
        "真是太", "实在太", "完全", "百分百", "百分之百", "绝对", "非常非常", "超级无敌", "甚为", "极度", "特别特别",
        "非长", "飞常", "非尝", "菲常", "十二分", "十二万分", "倍儿", "忒", "交关", "贼拉", "very", "extremely",
        "highly", "totally", "completely", "entirely", "super", "so", "very very", "absolutely", "most", "fully",
    ),
    Cat.INT_WEAK: ("相当", "颇为", "颇", "挺是", "really really"),
    Cat.PLAIN: (
        "很", "好", "很是", "真", "真的", "确实", "实在", "的确", "都很", "也很", "还是很", "真心", "很很", "really",
        "truly",
    ),
    Cat.MILD: ("挺", "蛮", "还挺", "还蛮", "quite", "pretty"),
    Cat.FAIR: ("比较", "较", "较为", "还比较", "比较的", "fairly", "rather", "reasonably"),
    Cat.BASIC: ("基本", "基本上", "基本都", "基本还", "几本", "basically", "mostly"),
    Cat.HEDGE: (
        "还算", "算是", "算", "还算是", "勉强", "勉强算", "差不多", "大体", "大体上", "大致", "大致上", "大部分",
        "多数", "还", "尚", "尚且", "一般", "凑合", "勉勉强强", "somewhat", "kind of", "sort of", "more or less",
        "almost", "nearly",
    ),
    Cat.SLIGHT: ("有点", "有些", "有一点", "有一点点", "稍微", "稍微有点", "稍稍", "略", "略微", "略有"),
    Cat.EPISTEMIC: ("可能", "也许", "大概", "或许", "应该", "应该算", "应该是", "估计", "maybe", "probably", "perhaps"),
    Cat.CLEAR: (
        "都", "也", "是", "就是", "还是", "总体", "整体", "总体上", "整体上", "总的来说", "总体来说", "整体来说",
        "全部", "都是", "觉得", "感觉", "感到", "认为", "表示", "让人", "令人", "使人", "叫人", "让我", "令我", "使我",
        "叫我", "人", "我", "我们", "本人", "你好", "您好", "地", "的", "之", "对", "对此", "对你们", "对您", "对这次",
        "这次", "本次", "服务", "我对", "并", "就", "倒是", "i", "i'm", "im", "am", "is", "was", "are", "we", "we're",
        "feel", "felt", "i am", "i was", "i feel", "it", "all", "overall",
    ),
}
_LEXICON: dict[str, Cat] = {w: cat for cat, words in _WORDS.items() for w in words}
_LONGEST = max(len(w) for w in _LEXICON)

# After the head: these strengthen it (满意极了, 不满意得很); in the same clause, other words pass.
_POST_INTENSIFIERS = ("极了", "得很", "的很", "滴很", "得不得了", "的不得了", "得不行", "的不行", "坏了", "死了",
                      "透了", "至极", "到极点", "到家了", "爆了", "到爆", "炸了", "无比", "得要命", "得没话说",
                      "得一批", " at all")
_PARTICLES = ("的", "了", "啊", "呀", "啦", "哦", "哈", "呢", "吧", "嘛", "呐", "哟", "噢", "喔")
_NEGATED = {GOOD: frozenset({B, D, VD}), BAD: frozenset({VS, S, B})}

# Lexicalised 不/没/无 words that negate nothing a rating is about; inside them the negator is not a loose one.
_BENIGN = re.compile(
    "不错|不过|不但|不仅|不用|不需要|不必|不久|不少|不断|不管|不论|不客气|不麻烦|不好意思|没想到|没问题|没毛病|没话说|"
    "没得说|没的说|无论|无可挑剔|无微不至|毫无疑问|不厌其烦|差不多|没意见|不得不|非常|非要|是非|"
    r"\bno problems?\b|\bno complaints?\b"
)
_LOOSE_NEGATORS = re.compile(r"[不没无未别非莫勿否]|\b(?:not|no|never|none|nothing|hardly)\b|n't")
# A homophone of 不 just in front of the head may be a mistyped negation (布满意 for 不满意).
_LIKE_BU = frozenset("布部步补卜埠簿木")

# The head of a satisfaction phrase, with the typos pinyin input makes of it. 满意度 is a noun.
_HEAD = re.compile(
    r"(?:满意|[瞒慢漫]意|满[义易仪])(?![度率足])"
    r"|(?<=不)满(?=$|[了啊呀的啦哦呢吧!！。.,，~～、;；\s]|[^\u3400-\u9fff0-9])"
    r"|\b(?:dis|un)satisfied\b|\bsatisfied\b"
)
_NEGATIVE_HEAD = re.compile(r"(?:dis|un)satisfied")

# Judgement words that name no grade: alone they are not an answer, but a grade must agree with them.
_MIDDLE = frozenset({S, B, D})
_JUDGEMENTS: dict[str, frozenset[Grade]] = {
    **dict.fromkeys("好评 点赞 给力 满分 完美 优秀 不错 心满意足 很棒 真棒 太棒 挺棒 非常棒 很好 挺好 蛮好 真好 "
                    "太好 超好 非常好 特别好 十分好 相当好 比较好 都挺好 good great excellent perfect".split(), GOOD),
    **dict.fromkeys("还行 还可以 一般般 一般 凑合 马马虎虎 过得去 尚可 还好 中规中矩 普普通通 so-so".split(), _MIDDLE),
    **dict.fromkeys("差评 不好 很差 太差 真差 好差 超差 差劲 差得很 糟糕 垃圾 烂透 太烂 很烂 失望 恶劣 不行 不靠谱 "
                    "投诉 气人 坑人 bad terrible awful poor".split(), BAD),
}
# Chinese words as plain literals (the regex engine then skips ahead by their first characters); English
# ones as whole words, looked for only in a reply that has Latin letters.
_JUDGEMENT = re.compile("|".join(sorted((re.escape(w) for w in _JUDGEMENTS if not w.isascii()), key=len,
                                        reverse=True)))
_JUDGEMENT_EN = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in _JUDGEMENTS if w.isascii()) + r")\b")
_LATIN = re.compile("[a-z]")

# A digit is a menu choice unless it is part of something else: a score on another scale (5分, 5星,
# 4.5), a quantity (等了3小时, 跑了2趟) or a date (11月2号).
_DIGIT = re.compile(r"(?<![0-9])[0-9](?![0-9])")
_SCORE_AFTER = re.compile(r"\s*(?:分|星|颗星|个星|颗|stars?\b|points?\b|/\s*[0-9])", re.IGNORECASE)
_QUANTITY_AFTER = re.compile(
    r"\s*(?:个?小时|分钟|天|次|趟|遍|年|个月|月|日|周|星期|元|块|个?人|岁|层|楼|点|号窗口|窗口|件|份|张|页|个?工作日|多|余|"
    r"hours?\b|days?\b|times?\b|minutes?\b)", re.IGNORECASE)
_DATE_BEFORE = re.compile(r"[月年周]\s*$")
_NUMERAL_ALONE = re.compile(r"(?:我)?(?:选择?|回复?|打)?(?:第)?([一二三四五壹贰叁肆伍])(?:个|项|号|条|吧|啊|呀|哈)*")
_NUMERALS = dict(zip("一二三四五壹贰叁肆伍", "1234512345", strict=True))

# A question back is never an answer: a question mark, 吗, an interrogative, or the A-not-A form (满不满意).
_QUESTION = re.compile(
    r"[?？]|吗|(?<![什怎这那多要])么\W*$|什么意思|是什么|为什么|为啥|怎么评|怎么回|怎么办|怎么弄|怎么操作|咋评|咋回|"
    r"如何评|如何回|哪个|是几|几是|几号是|请问|能不能|可不可以|(?<![不没])满[不没]满|"
    r"(?<![不没太大很么咋甚够])满意[不没]有?(?=\W|$)"
)
# A condition makes the phrase in its clause a wish, not a grade: 如果快点就满意了.
# So does a wish (希望, 下次), a past state since changed (本来挺满意的，结果…), and "能…就…".
_CONDITION = re.compile(r"如果|要是|假如|假设|若是|倘若|的话|只要|希望|下次|以后|本来|原来|原本|本以为|起初|一开始|"
                        r"能[^,，。.!！]{0,12}就|\bif\b|\bwould\b")
# A concession keeps a reservation back: 满意是满意，就是太慢了.
_CONCESSION = re.compile(r"满意[是归]满意")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_LIST_ITEM = re.compile(r"(?m)^(\s*)[0-9]\s*([.、)])")
_PERCENT = re.compile(r"100\s*%")
# Replies typed in pinyin without choosing the characters: "manyi", "feichang manyi", "bu manyi".
_PINYIN = {"feichang": "非常", "jiben": "基本", "bushihen": "不是很", "butai": "不太", "bushi": "不是", "hen": "很",
           "tai": "太", "ting": "挺", "bu": "不", "manyi": "满意"}
_PINYIN_SYLLABLES = re.compile("|".join(sorted(_PINYIN, key=len, reverse=True)))
_PINYIN_PHRASE = re.compile(r"\b(?:(?:feichang|jiben|bushihen|butai|bushi|hen|tai|ting|bu)\s*)*manyi\b")
_SPACES = re.compile(r"\s+")

# Traditional characters the grammar's words use, and their simplified forms (one to one, in order).
TRADITIONAL_PAIRS = (
    "満滿瞞沒別說談稱還蠻極夠麼幾點對於個覺讓價評為無萬實較總體強這們給與並語錯壞應該認兩樣絕從來過辦態務問題謝"
    "雖獨讀難歡聽見氣爛糟們們壞紹約當時間業費專錯嗎麽啥佔極讚贊優穩靠譜並遠擁夠壓幫確據屬彆儘盡齊義儀",
    "满满瞒没别说谈称还蛮极够么几点对于个觉让价评为无万实较总体强这们给与并语错坏应该认两样绝从来过办态务问题谢"
    "虽独读难欢听见气烂糟们们坏绍约当时间业费专错吗么啥占极赞赞优稳靠谱并远拥够压帮确据属别尽尽齐义仪",
)
_FOLD = str.maketrans(*TRADITIONAL_PAIRS)
_FOLD_CHARS = {**dict(zip(*TRADITIONAL_PAIRS, strict=True)), "\u2019": "'",
               **{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)}}
# str.translate looks every character up; a reply holds few of these, so a regex finds them faster.
_FOLDABLE = re.compile("[" + re.escape("".join(_FOLD_CHARS)) + "]")


def _fold_char(m: re.Match[str]) -> str:
    return _FOLD_CHARS[m.group(0)]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One thing in a reply that bears on the grade."""

    fits: frozenset[Grade]  # the grades it is compatible with
    reading: Grade | None = None  # the grade it names outright, if it names one
    digit: str | None = None  # a menu digit ("1" … "9"), as written
    score: bool = False  # a number on another scale: the reply cannot be read


@dataclass(frozen=True, slots=True)
class Reading:
    """What a reply says, or `question=True` when it asks something back."""

    evidence: tuple[Evidence, ...] = ()
    question: bool = False


def fold(text: str) -> str:
    """The form the grammar reads: NFKC (full-width → ASCII), ASCII lower case, simplified characters,
    links removed, blanks dropped except between two ASCII letters or digits (不 满意 is 不满意; 1 2 stays two)."""
    t = _drop_spacing_accents(unicodedata.normalize("NFKC", text or ""))
    t = _FOLDABLE.sub(_fold_char, t)
    t = _URL.sub(" ", t)
    if len(_LIST_ITEM.findall(t)) >= 2:  # "1.排队太久\n2.态度差" numbers complaints, not grades
        t = _LIST_ITEM.sub(r"\1 \2", t)
    t = _PERCENT.sub("百分百", t)
    t = _PINYIN_PHRASE.sub(_hanzi, t)
    return _SPACES.sub(_keep_space, t).strip()


def _drop_spacing_accents(t: str) -> str:
    """NFKC turns a spacing accent typed as decoration (¯ ´ ¨ ˜) into a blank and a combining mark; once the
    blanks go, the mark would sit on the word before it ("一¯" read as no numeral). A mark on a blank goes."""
    out: list[str] = []
    for ch in t:
        if unicodedata.category(ch) in ("Mn", "Me") and (not out or out[-1].isspace()):
            continue
        out.append(ch)
    return "".join(out)


def simplified(text: str) -> str:
    """Traditional characters folded to simplified, for the words this project reads (labels included)."""
    return text.translate(_FOLD)


def _hanzi(m: re.Match[str]) -> str:
    return _PINYIN_SYLLABLES.sub(lambda s: _PINYIN[s.group(0)], m.group(0).replace(" ", ""))


def _keep_space(m: re.Match[str]) -> str:
    s, e = m.start(), m.end()
    text = m.string
    before = text[s - 1] if s > 0 else ""
    after = text[e] if e < len(text) else ""
    return " " if (before.isascii() and before.isalnum() and after.isascii() and after.isalnum()) else ""


def _is_boundary(ch: str) -> bool:
    """Punctuation, symbols and emoji end a clause; letters, digits and marks do not."""
    return ch not in " '" and unicodedata.category(ch)[0] in "PSZC"


def read(text: str) -> Reading:
    t = fold(text)
    if len(t) > MAX_READ or not t:
        return Reading()
    if _QUESTION.search(t) or _CONCESSION.search(t):
        return Reading(question=True)
    benign = _covered(_BENIGN, t)
    heads = [(m.start(), m.end()) for m in _HEAD.finditer(t)]
    latin = _LATIN.search(t) is not None
    judged = [(m.start(), m.end(), _JUDGEMENTS[m.group(0)])
              for pattern in ((_JUDGEMENT, _JUDGEMENT_EN) if latin else (_JUDGEMENT,)) for m in pattern.finditer(t)]
    consumed = set(benign)
    phrases: list[tuple[int, int, list[tuple[str, Cat]], int, bool]] = []
    for start, end in heads:
        chain, left = _chain(t, start)
        post_end, intense = _post(t, end)
        phrases.append((start, end, chain, post_end, intense))
        consumed.update(range(left, post_end))
    for start, end, _ in judged:
        _, left = _chain(t, start)
        consumed.update(range(left, end))
    if _a_not_a(t, phrases):
        return Reading(question=True)
    evidence: list[Evidence] = []
    for start, end, chain, post_end, intense in phrases:
        left = start - sum(len(w) for w, _ in chain)
        cs, ce = _clause(t, start)
        cats = [c for _, c in chain] + ([Cat.NEG] if _NEGATIVE_HEAD.fullmatch(t, start, end) else [])
        reading, fits = interpret(cats, intense)
        if (_loose(t, cs, left, consumed) or _loose(t, post_end, ce, consumed) or _condition(t, cs, ce)
                or _dangling(t, cs, left) or (left > 0 and t[left - 1] in _LIKE_BU)):
            reading, fits = None, ALL
        evidence.append(Evidence(fits=fits, reading=reading))
    for start, _, fits in judged:
        cs, ce = _clause(t, start)
        if any(s <= start < e for s, e in heads) or _condition(t, cs, ce):
            continue
        chain, _ = _chain(t, start)
        if sum(c in _NEGATIONS for _, c in chain) % 2 == 1:
            fits = _NEGATED.get(fits, fits)
        evidence.append(Evidence(fits=fits))
    evidence.extend(_digits(t))
    return Reading(tuple(evidence))


def _a_not_a(t: str, phrases: list[tuple[int, int, list[tuple[str, Cat]], int, bool]]) -> bool:
    """满意不满意, satisfied or not: a phrase without a negation, then straight away the same one negated."""
    ends = {end: chain for _, end, chain, _, _ in phrases}
    for start, _, chain, _, _ in phrases:
        if len(chain) == 1 and chain[0][0] in ("不", "没"):
            before = ends.get(start - 1)
            if before is not None and not any(c in _NEGATIONS for _, c in before):
                return True
    return False


def interpret(cats: list[Cat], intense: bool = False) -> tuple[Grade | None, frozenset[Grade]]:
    """The grade a satisfaction phrase names (or None) and the grades it fits, from the categories of the
    words in front of its head, left to right (a negative head such as "dissatisfied" ends in NEG)."""
    cats = [c for c in cats if c is not Cat.CLEAR]
    negations = [i for i, c in enumerate(cats) if c in _NEGATIONS]
    if len(negations) >= 2:
        return None, GOOD if all(cats[i] is Cat.NEG for i in negations[-2:]) else ALL
    if negations:
        i = negations[0]
        kind, before, between = cats[i], cats[:i], cats[i + 1:]
        inner = _strongest(between)
        if kind is Cat.TOTAL:
            base = (VD, BAD) if inner in (None, Cat.PLAIN, Cat.MILD) else (None, ALL)
        elif kind is Cat.HEDGE_NEG:
            base = ((None, frozenset({B, D})) if inner in (None, Cat.PLAIN, Cat.MILD)
                    else (None, frozenset({S, B, D})) if inner in (Cat.INT, Cat.INT_WEAK) else (None, ALL))
        else:
            base = ((D, frozenset({D})) if inner in (None, Cat.PLAIN, Cat.MILD)
                    else (None, frozenset({S, B, D})) if inner in (Cat.INT, Cat.INT_WEAK) else (None, ALL))
        reading, fits = base
        if reading is D and intense:
            reading, fits = VD, frozenset({VD})
        outer = _strongest(before)
        if outer is None or reading is None:
            return (reading, fits) if outer in (None, Cat.PLAIN, Cat.MILD) or reading is None else (None, fits)
        if reading is VD:
            return (VD, fits) if outer in (Cat.INT, Cat.INT_WEAK, Cat.PLAIN, Cat.MILD) else (None, fits)
        if outer is Cat.INT:
            return VD, frozenset({VD})
        if outer is Cat.INT_WEAK:
            return VD, BAD
        if outer in (Cat.PLAIN, Cat.MILD, Cat.FAIR):
            return D, BAD
        if outer in (Cat.BASIC, Cat.SLIGHT):
            return D, frozenset({D})
        return None, BAD if outer is not Cat.EPISTEMIC else fits
    degree = _strongest(cats)
    if Cat.EPISTEMIC in cats:
        rest = [c for c in cats if c is not Cat.EPISTEMIC]
        return None, interpret(rest, intense)[1]
    if degree in (Cat.HEDGE, Cat.SLIGHT):
        return None, frozenset({S, B})
    if degree is Cat.BASIC:
        return (B, frozenset({B})) if not intense else (None, frozenset({S, B}))
    if degree is Cat.INT or intense:
        return VS, frozenset({VS})
    if degree is Cat.INT_WEAK:
        return VS, frozenset({VS, S})
    if degree is Cat.PLAIN:
        return S, frozenset({VS, S})
    if degree is Cat.FAIR:
        return S, frozenset({S, B})
    return S, frozenset({S})


# Which of several degree words in one phrase decides it: a hedge or 基本 outranks an intensifier.
_RANK = (Cat.EPISTEMIC, Cat.HEDGE, Cat.SLIGHT, Cat.BASIC, Cat.INT, Cat.INT_WEAK, Cat.FAIR, Cat.PLAIN, Cat.MILD)


def _strongest(cats: list[Cat]) -> Cat | None:
    present = set(cats)
    return next((c for c in _RANK if c in present), None)


def _chain(t: str, start: int) -> tuple[list[tuple[str, Cat]], int]:
    """The known words in front of position `start`, nearest last, read right to left (longest word first);
    and where they begin."""
    words: list[tuple[str, Cat]] = []
    p = start
    while len(words) < 8:
        q = p
        while q > 0 and t[q - 1] == " ":
            q -= 1
        for size in range(min(_LONGEST, q), 0, -1):
            w = t[q - size:q]
            cat = _LEXICON.get(w)
            if cat is not None and (not w[0].isascii() or q - size == 0 or not t[q - size - 1].isalnum()):
                words.append((w, cat))
                p = q - size
                break
        else:
            break
    words.reverse()
    return words, p


def _post(t: str, end: int) -> tuple[int, bool]:
    """Where the phrase ends (its head, then the particles and intensifiers that belong to it), and whether
    an intensifier was among them."""
    p, intense = end, False
    while True:
        for word in (*_POST_INTENSIFIERS, *_PARTICLES):
            if t.startswith(word, p):
                p += len(word)
                intense = intense or word in _POST_INTENSIFIERS
                break
        else:
            return p, intense


def _clause(t: str, at: int) -> tuple[int, int]:
    """The (start, end) of the clause around position `at`: the run between boundaries."""
    start, end = at, at
    while start > 0 and not _is_boundary(t[start - 1]):
        start -= 1
    while end < len(t) and not _is_boundary(t[end]):
        end += 1
    return start, end


def _covered(pattern: re.Pattern[str], t: str) -> set[int]:
    return {i for m in pattern.finditer(t) for i in range(m.start(), m.end())}


def _loose(t: str, start: int, end: int, consumed: set[int]) -> bool:
    """A negator between `start` and `end` that no phrase and no harmless word accounts for."""
    return any(not set(range(m.start(), m.end())) <= consumed for m in _LOOSE_NEGATORS.finditer(t, start, end))


def _condition(t: str, start: int, end: int) -> bool:
    return _CONDITION.search(t, start, end) is not None


def _dangling(t: str, clause_start: int, left: int) -> bool:
    """"不，满意" or "不！满意": a negator cut off from the phrase by punctuation alone."""
    if left != clause_start or clause_start == 0:
        return False
    p = clause_start - 1
    while p >= 0 and _is_boundary(t[p]):
        p -= 1
    return p >= 0 and (t[p] in "不没无未别" or t.endswith("not", 0, p + 1))


def _digits(t: str) -> list[Evidence]:
    found: list[Evidence] = []
    alone = len(t) <= 12 and _NUMERAL_ALONE.fullmatch("".join(ch for ch in t if not _is_boundary(ch)))
    if alone:
        digit = _NUMERALS[alone.group(1)]
        return [Evidence(fits=frozenset(), digit=digit)]
    for m in _DIGIT.finditer(t):
        after = t[m.end():m.end() + 8]
        before = t[max(0, m.start() - 3):m.start()]
        decimal = (m.start() >= 2 and t[m.start() - 1] == "." and t[m.start() - 2].isdigit()) or (
            after[:1] == "." and after[1:2].isdigit())
        if _QUANTITY_AFTER.match(after) or _DATE_BEFORE.search(before):
            continue
        if decimal or _SCORE_AFTER.match(after):
            found.append(Evidence(fits=frozenset(), score=True))
        else:
            found.append(Evidence(fits=frozenset(), digit=m.group(0)))
    return found
