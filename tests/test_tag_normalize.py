"""Canonical tag form: case, accents, punctuation, plurals, junk rejection."""

from __future__ import annotations

import pytest

from temarec.tagging.normalize import normalize_tag, singularize

CASES = [
    ("Coffee Mugs", "coffee mug"),
    ("coffee-mug", "coffee mug"),
    ("  Coffee   MUG. ", "coffee mug"),
    ("coffee_mugs", "coffee mug"),
    ("Crème Brûlée", "creme brulee"),
    ("1. Gluten-Free", "gluten free"),
    ("- vegan", "vegan"),
    ("#Vegan", "vegan"),
    ('"Arts & Crafts"', "art and craft"),
    ("Valentine's Day", "valentine day"),
    ("Valentine’s Day", "valentine day"),
    ("K-Cups", "k cup"),
    ("The Beatles", "beatle"),
    ("Colour Pencils", "color pencil"),
    ("Silicone Moulds", "silicone mold"),
    ("Die Cuts", "die cut"),
    ("Cookies", "cookie"),
    ("Berries", "berry"),
    ("Knives", "knife"),
    ("Boxes", "box"),
    ("Dishes", "dish"),
    ("Peaches", "peach"),
    ("Quiches", "quiche"),
    ("Tomatoes", "tomato"),
    ("Shoes", "shoe"),
    ("Wine Glasses", "wine glass"),
    ("Scissors", "scissors"),
    ("Canvas", "canvas"),
    ("Hummus", "hummus"),
    ("Christmas", "christmas"),
    ("Series", "series"),
    ("Men's Shoes", "man shoe"),
    ("Children’s Books", "child book"),
    ("3D printing", "3d printing"),
    ("paint/brush", "paint brush"),
]


@pytest.mark.parametrize(("raw", "want"), CASES)
def test_canonical_form(raw, want):
    assert normalize_tag(raw) == want


@pytest.mark.parametrize(("raw", "want"), CASES)
def test_idempotent(raw, want):
    assert normalize_tag(want) == want


@pytest.mark.parametrize(
    "bad",
    [
        None,
        42,
        "",
        "   ",
        "---",
        "2019",
        "none",
        "N/A",
        "misc",
        "the",
        "and of",
        "this is a whole sentence and not a tag at all",
        "x" * 300,
    ],
)
def test_rejects_unusable_tags(bad):
    assert normalize_tag(bad) is None


def test_variants_meet():
    variants = ["Coffee Mugs", "coffee mug", "COFFEE-MUGS!", " coffee  mugs ", "Coffee_Mug"]
    assert {normalize_tag(v) for v in variants} == {"coffee mug"}


def test_singularize_rules():
    assert singularize("supplies") == "supply"
    assert singularize("movies") == "movie"
    assert singularize("olives") == "olive"
    assert singularize("blues") == "blues" and singularize("greens") == "greens"  # a genre, salad leaves
    assert singularize("leaves") == "leaf"
    assert singularize("glasses") == "glass"
    assert singularize("gas") == "gas"  # short words kept
    assert singularize("citrus") == "citrus"
    assert singularize("analysis") == "analysis"


@pytest.mark.parametrize(
    "raw, want",
    [
        ("Smørrebrød", "smørrebrød"),  # letters NFKD cannot fold were dropped, leaving "sm rrebr d"
        ("抹茶 ラテ", "抹茶 ラテ"),  # a catalogue in another script keeps its tags (were dropped: no letter)
        ("книги", "книги"),
        ("чай", "чай"),  # й is not an accented и: marks of non-Latin letters stay
        ("ブラックコーヒー", "ブラックコーヒー"),  # the voiced mark of ブ stays
        ("हिन्दी किताब", "हिन्दी किताब"),  # vowel signs and virama are part of the word
        ("한국 요리", "한국 요리"),  # Hangul recomposed
        ("Ｆｕｌｌｗｉｄｔｈ Mugs", "fullwidth mug"),
        ("snake_case tag", "snake case tag"),  # the underscore is still a separator
        ("Crème Brûlée", "creme brulee"),  # accents are still folded
    ],
)
def test_letters_of_any_script_are_kept(raw, want):
    assert normalize_tag(raw) == want


def test_a_sentence_in_a_script_without_spaces_is_not_a_tag():
    """Chinese or Japanese sentences are one "word"; they are bounded by their unspaced characters."""
    from temarec.tagging.normalize import MAX_UNSPACED_CHARS, unspaced_chars

    assert unspaced_chars("抹茶キットカット") == 8 and unspaced_chars("kit kat") == 0
    assert normalize_tag("抹茶キットカット") == "抹茶キットカット"
    sentence = "日本の抹茶味のキットカットはとても美味しいです"  # 23 characters, no space
    assert unspaced_chars(sentence) > MAX_UNSPACED_CHARS and normalize_tag(sentence) is None
    assert normalize_tag("เครื่องชงกาแฟอัตโนมัติสำหรับบ้านและสำนักงาน") is None  # Thai, also unspaced
    assert normalize_tag("한국 요리 책") == "한국 요리 책"  # Hangul is written with spaces: counted as words
    # a long product word is still a tag; Thai vowel and tone marks count with their letter
    assert normalize_tag("ワイヤレスノイズキャンセリングイヤホン") is not None
    assert unspaced_chars("เครื่องใช้ไฟฟ้าในครัว") == 16 and normalize_tag("เครื่องใช้ไฟฟ้าในครัว") is not None
