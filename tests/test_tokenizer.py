from __future__ import annotations

from sentiment.tokenizer import TokenizerSettings, tokenize


def test_raw_review_markup_case_and_punctuation() -> None:
    text = "A <b>GREAT</b> film!<br /><br />Don't miss it&mdash;really."
    assert tokenize(text) == ["a", "great", "film", "!", "don't", "miss", "it", "really"]


def test_curly_apostrophes_match_straight_ones() -> None:
    assert tokenize("It\u2019s fine") == tokenize("It's fine") == ["it's", "fine"]


def test_negation_scope_ends_at_punctuation() -> None:
    settings = TokenizerSettings(negation=True)
    assert tokenize("Not good, but fun", settings) == ["not", "not_good", "but", "fun"]
    assert tokenize("I didn't like it. Great cast", settings) == [
        "i",
        "didn't",
        "not_like",
        "not_it",
        "great",
        "cast",
    ]


def test_whitespace_mode_is_the_tutorial_split() -> None:
    settings = TokenizerSettings(split="whitespace", lowercase=False, strip_html=False)
    assert tokenize("Good  film, <br/>", settings) == ["Good", "film,", "<br/>"]


def test_junk_and_non_strings_never_raise() -> None:
    assert tokenize("\x00\x01\ufffd") == []
    assert tokenize(None) == []  # type: ignore[arg-type]
