"""Canonical form of a tag, so that "Coffee Mugs", "coffee-mug" and " coffee mug." are one feature.

`normalize_tag` applies, in order:

1. Unicode NFKD with the accents of Latin letters dropped ("crème brûlée" -> "creme brulee"), case
   folded; marks that belong to letters of other scripts (й, ブ, Devanagari vowel signs) are kept.
2. List decorations removed: leading numbering / bullets / "#", surrounding quotes and brackets.
3. "&" between words becomes "and"; a possessive "'s" is dropped; every other character that is not a
   letter, digit (of any script: "smørrebrød", "抹茶" are kept) or space (hyphen, slash, dot, underscore,
   apostrophe...) becomes a space, except that an apostrophe inside a word is simply removed
   ("rock'n'roll" -> "rocknroll").
4. Whitespace collapsed; leading articles ("a", "an", "the") removed.
5. British spellings mapped to American ones for a short list of common words (colour, flavour, mould...).
6. Every word singularised by `singularize` (a small rule-based singulariser with exception lists; words of
   three letters or fewer and words with digits are kept). All words, not only the last one, so that
   "arts and crafts" and "art and craft" meet; the canonical form is for matching, not for display.
7. Rejected (None): not a string, empty, no letter at all, only stop words, more than `MAX_WORDS` words,
   `MAX_CHARS` characters or `MAX_UNSPACED_CHARS` characters of scripts written without spaces (Chinese,
   Japanese kana, Thai...: there a sentence is one "word"; a sentence is not a tag), or a placeholder such
   as "none", "n/a", "misc".

Space-insensitive duplicates ("paint brush" / "paintbrush") and near-synonyms are merged later, by the
vocabulary (`temarec.tagging.vocab`), which sees all tags at once.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_WORDS = 6
MAX_CHARS = 64
#: about MAX_WORDS words of a script written without spaces ("抹茶キットカット" has 8, the katakana loanword
#: "ワイヤレスノイズキャンセリングイヤホン" 19)
MAX_UNSPACED_CHARS = 20

#: Han, kana, Thai, Lao, Myanmar, Khmer: scripts that do not separate words by spaces
_UNSPACED = re.compile(
    "[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\U00020000-\U0002fa1f]"
)


def unspaced_chars(text: str) -> int:
    """How many characters of `text` belong to scripts written without spaces between words; combining
    marks (Thai vowel and tone signs, the kana voicing mark after NFKD) are part of their letter."""
    if text.isascii():
        return 0
    return sum(1 for c in _UNSPACED.findall(text) if unicodedata.category(c) != "Mn")


#: English function words; used to reject stop-word-only tags and by the keyphrase extractor
STOPWORDS = frozenset(
    """
    a about above after again against all almost also although am among an and another any are around as at
    be because been before being below between both but by can cannot could did do does doing down during
    each either else ever every few for from further had has have having he her here hers herself him himself
    his how however i if in into is it its itself just least less let like made make many may me might more
    most much must my myself neither never no nor not now of off often on once one only or other others our
    ours ourselves out over own per perhaps quite rather same she should since so some such than that the
    their theirs them themselves then there these they this those though through thus to too toward towards
    under until up upon us very via was we well were what whatever when where whether which while who whom
    whose why will with within without would yet you your yours yourself yourselves
    """.split()
)

#: tags that carry no information
PLACEHOLDER_TAGS = frozenset(
    {"none", "null", "nil", "na", "n a", "unknown", "other", "misc", "miscellaneous", "tag", "tags", "etc"}
)

BRITISH_SPELLING = {
    "colour": "color",
    "colours": "colors",
    "coloured": "colored",
    "colourful": "colorful",
    "flavour": "flavor",
    "flavours": "flavors",
    "flavoured": "flavored",
    "favourite": "favorite",
    "favourites": "favorites",
    "grey": "gray",
    "jewellery": "jewelry",
    "aluminium": "aluminum",
    "organiser": "organizer",
    "organisers": "organizers",
    "centre": "center",
    "centres": "centers",
    "fibre": "fiber",
    "fibres": "fibers",
    "litre": "liter",
    "litres": "liters",
    "metre": "meter",
    "metres": "meters",
    "mould": "mold",
    "moulds": "molds",
    "yoghurt": "yogurt",
    "yoghurts": "yogurts",
    "savoury": "savory",
    "catalogue": "catalog",
    "pyjamas": "pajamas",
    "personalised": "personalized",
    "customised": "customized",
    "sanitiser": "sanitizer",
    "moisturiser": "moisturizer",
    "caramelised": "caramelized",
    "practise": "practice",
    "tyre": "tire",
    "tyres": "tires",
}

# ---- singular forms ---------------------------------------------------------------------------------
_IRREGULAR = {
    "children": "child",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "geese": "goose",
    "teeth": "tooth",
    "feet": "foot",
    "knives": "knife",
    "wives": "wife",
    "lives": "life",
    "leaves": "leaf",
    "loaves": "loaf",
    "halves": "half",
    "shelves": "shelf",
    "calves": "calf",
    "wolves": "wolf",
    "thieves": "thief",
    "scarves": "scarf",
    "hooves": "hoof",
    "elves": "elf",
    "selves": "self",
    "sheaves": "sheaf",
    "dwarves": "dwarf",
    "potatoes": "potato",
    "tomatoes": "tomato",
    "heroes": "hero",
    "echoes": "echo",
    "mangoes": "mango",
    "volcanoes": "volcano",
    "torpedoes": "torpedo",
    "mosquitoes": "mosquito",
    "dominoes": "domino",
    "buffaloes": "buffalo",
    "tornadoes": "tornado",
    "avocadoes": "avocado",
    "cargoes": "cargo",
    "zeroes": "zero",
    "mottoes": "motto",
    "cacti": "cactus",
    "fungi": "fungus",
    "indices": "index",
    "matrices": "matrix",
    "vertices": "vertex",
    "appendices": "appendix",
    "analyses": "analysis",
    "crises": "crisis",
    "theses": "thesis",
    "diagnoses": "diagnosis",
    "oases": "oasis",
    "criteria": "criterion",
    "phenomena": "phenomenon",
    "quizzes": "quiz",
    "goes": "go",
    "lenses": "lens",
    "buses": "bus",
    "bonuses": "bonus",
    "viruses": "virus",
    "campuses": "campus",
    "circuses": "circus",
    "octopuses": "octopus",
    "cactuses": "cactus",
    "choruses": "chorus",
    "walruses": "walrus",
    "irises": "iris",
    "canvases": "canvas",
    "atlases": "atlas",
    "aliases": "alias",
    "gases": "gas",
    "biases": "bias",
    "kiwis": "kiwi",
    "skis": "ski",
    "taxis": "taxi",
    "martinis": "martini",
    "bikinis": "bikini",
    "minis": "mini",
    "emojis": "emoji",
    "menus": "menu",
    "gurus": "guru",
    "haikus": "haiku",
    "tutus": "tutu",
    "bayous": "bayou",
}

#: words ending in s that are not plurals (or have no useful singular)
_INVARIANT = frozenset(
    """
    news series species scissors pants jeans shorts tongs pliers tweezers shears binoculars trousers pajamas
    tights overalls clothes goods sunglasses eyeglasses means molasses diabetes rabies scabies measles mumps
    headquarters christmas canvas atlas alias texas kansas arkansas vegas tapas xmas always perhaps towards
    afterwards backwards forwards besides whereas sometimes
    nowadays outdoors indoors downstairs upstairs chaos ethos pathos cosmos kudos thermos asbestos bias
    lens electronics physics mathematics athletics gymnastics aerobics economics politics ethics logistics
    acoustics optics statistics graphics billiards darts mews odds thanks whereabouts brussels swiss
    tennis analysis basis crisis iris chassis debris oasis sous marquis grits suds lotus its this his hers
    yes gas plus thus bus ours yours theirs does was has is us
    blues greens
    """.split()
)

#: nouns ending in -ie (so -ies -> -ie, not -y)
_IE_NOUNS = frozenset(
    """
    cookie movie pie tie lie die brownie smoothie veggie calorie hoodie zombie rookie selfie genie pixie
    goalie beanie birdie prairie lingerie sortie auntie sweetie cutie foodie newbie freebie boogie collie
    hippie junkie groupie reverie coterie menagerie kiddie bootie bestie walkie talkie sharpie barbie
    bourgie budgie eyrie specie
    """.split()
)

#: nouns ending in -che / -she (so -ches -> -che, not -ch)
_CHE_NOUNS = frozenset(
    """
    ache headache cache niche quiche ganache cliche moustache mustache avalanche creche psyche microfiche
    brioche pastiche attache gouache tranche fiche cartouche panache
    """.split()
)


@lru_cache(maxsize=65536)
def singularize(word: str) -> str:
    """The singular of one lower-case English word, by rule; unknown or short words come back unchanged."""
    w = word
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) <= 3 or not w.isalpha():
        return w
    if w in _INVARIANT or not w.endswith("s"):
        return w
    if w.endswith(("ss", "us", "is")):
        return w
    if w.endswith("ies"):
        return w[:-1] if w[:-1] in _IE_NOUNS else w[:-3] + "y"
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith(("ches", "shes")):
        return w[:-1] if w[:-1] in _CHE_NOUNS else w[:-2]
    if w.endswith(("xes", "zzes")):
        return w[:-2]
    return w[:-1]


_LEADING_DECOR = re.compile(r"^(?:\s*(?:\d+\s*[.):]|[-*•·#>]+)\s*)+")
_AMP = re.compile(r"\s*&\s*")
# letters and digits of any script ([^\W_]), so that "smørrebrød" or "抹茶" stay words rather than becoming
# spaces (or nothing); Latin letters with accents were folded to plain ones before
_POSSESSIVE = re.compile(r"(?<=[^\W_])'s\b")
_INNER_APOS = re.compile(r"(?<=[^\W_])'(?=[^\W_])")
_NON_WORD = re.compile(r"(?:[^\w ]|_)+")
_ARTICLES = ("a", "an", "the")


def _latin(cp: int) -> bool:
    """Basic Latin to Latin Extended-B, Latin Extended Additional, -C and -D."""
    return cp < 0x250 or 0x1E00 <= cp <= 0x1EFF or 0x2C60 <= cp <= 0x2C7F or 0xA720 <= cp <= 0xA7FF


def fold_text(text: str) -> str:
    """NFKD with the accents of Latin letters dropped, case folded; typographic quotes become plain
    apostrophes. Marks on letters of other scripts are part of them (й, ブ, Devanagari vowel signs) and
    are kept, recomposed (NFC)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    if decomposed.isascii():
        return decomposed.casefold()
    out: list[str] = []
    base = 0  # code point of the last character that is not a combining mark
    for c in decomposed:
        if unicodedata.combining(c):
            if _latin(base):
                continue
        else:
            base = ord(c)
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out)).casefold()


def _spaces_for_non_word(text: str) -> str:
    """`_NON_WORD` for text beyond ASCII: marks (Mn, Mc, Me: vowel signs, viramas) stay inside words."""
    return "".join(
        c if c == " " or (c.isalnum() and c != "_") or unicodedata.category(c)[0] == "M" else " "
        for c in text
    )


def normalize_words(text: str) -> list[str]:
    """Steps 1-6 of `normalize_tag` without the rejection rules: the canonical words of any short text."""
    t = fold_text(text).strip()
    t = _LEADING_DECOR.sub("", t)
    t = _AMP.sub(" and ", t)
    t = _POSSESSIVE.sub("", t)
    t = _INNER_APOS.sub("", t)
    t = _NON_WORD.sub(" ", t) if t.isascii() else _spaces_for_non_word(t)
    words = t.split()
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return [singularize(BRITISH_SPELLING.get(w, w)) for w in words]


def normalize_tag(tag: str) -> str | None:
    """The canonical form of one tag, or None when it is not a usable tag (see the module docstring)."""
    if not isinstance(tag, str):
        return None
    if len(tag) > 4 * MAX_CHARS:  # a paragraph, not a tag; also bounds the work done on bad input
        return None
    words = normalize_words(tag)
    if not words or len(words) > MAX_WORDS:
        return None
    out = " ".join(words)
    if len(out) > MAX_CHARS or unspaced_chars(out) > MAX_UNSPACED_CHARS or not any(c.isalpha() for c in out):
        return None
    if out in PLACEHOLDER_TAGS or all(w in STOPWORDS for w in words):
        return None
    return out
