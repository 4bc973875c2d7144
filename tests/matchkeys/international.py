"""Hypothesis strategies for the world's spellings: names in many scripts, accents composed and
decomposed, case pairs that change length or need context (final sigma, dotted I, sharp s), Unicode
whitespace and dashes, digits of other scripts, characters Python's Unicode version does not know,
and phone numbers from every region phonenumbers has, in national and international forms."""

from __future__ import annotations

import unicodedata

import phonenumbers
from hypothesis import strategies as st

NAMES = (
    "José", "María", "Zoë", "François", "Hélène", "Søren", "Björn", "Łukasz", "Ángel", "Siobhán", "Jürgen",
    "Małgorzata", "Jiří", "Ömer", "Çağla", "Şükrü", "İbrahim", "Thảo", "Đức", "Nguyễn", "Trần", "João",
    "Conceição", "Iñaki", "Geneviève", "Maëlle", "Øyvind", "Zsófia", "Ștefan", "Sigurður", "Þór", "Groß",
    "Weiß", "O'Brien", "St. John", "van der Berg", "García-López", "Jean-Luc", "Mary Ann", "D'Angelo",
    "Александр", "Мария", "Олена", "Шевченко", "Γιώργος", "ΝΙΚΟΛΑΟΣ", "ΟΔΥΣΣΕΑΣ", "Παπαδόπουλος", "محمد",
    "فاطمة", "أحمد", "עברית", "דוד", "प्रिया", "अर्जुन", "क़ासिम", "রহিম", "চৌধুরী", "கார்த்திக்", "สมชาย", "สุดา",
    "美咲", "翔太", "さくら", "ゆうき", "カタカナ", "伟", "秀英", "민준", "서연", "정민", "ნინო", "Արամ", "Ꮳꮃꭹ",
    "ᲜᲘᲜᲝ", "𐐔𐐯𐑅𐐨𐑉𐐯𐐻", "𞤀𞤣𞤤𞤢𞤥",
)  # fmt: skip
"""Real names and words, including scripts with case (Cherokee, Georgian Mtavruli, Deseret, Adlam)."""

TRICKY = (
    "\u0301\u0308\u0323\u0327\u0328\u030c\u0303\u0345\u05b4\u064e\u0651\u093c\u094d\u0e31\u0e48\u302a"  # marks
    "ΣσςΑΟ'.İıIißẞ\u212a\u2126\u212bǅǈǋ\ufb01\ufb00ŉ"  # context and length-changing case
    "\uf900\uf901\U0002f800\u0958\u2000\u2001\u0344\u0340"  # NFC singletons, exclusions
    "\u1100\u1161\u11a8\uac00\u0b47\u0b3e\u09c7\u09be"  # composable jamo, Indic length marks
    "\u00a0\u1680\u2009\u200a\u2028\u2029\u202f\u205f\u3000\x1c\x1f\x85\u180e\u200b\u200c\u200d\ufeff\u00ad"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\u2e3a\u301c-_@.+()〒"  # dashes and punctuation
    "٠١٢٣४५६०१२३０１２３９𝟎𝟗¹²"  # digits of other scripts, math and superscript digits
    "ＡＢａｂ\U0001f600\U0001f469\u200d\U0001f467\ufe0f\U000e0041\U000e0100"  # full-width, emoji, tags
    "\u0378\u05ff\u0870\u1cff\U0002a6e0\U00030000\U00031350\U000323af\U0010fffd"  # unassigned here, or >= U+30000
)
"""Characters where Python and Rust or Arrow could part ways, if anywhere."""

SPACES = " \t\u00a0\u3000\u2003\u202f\x1c\x1f\x85\u2028"

scripts_text = st.text(alphabet=st.sampled_from(TRICKY + "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789"), max_size=14)
any_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def _spell(word: str, case: str, form: str, pad: str, glue: str) -> str:
    text = {"upper": word.upper(), "lower": word.lower(), "title": word.title(), "as is": word}[case]
    text = unicodedata.normalize(form, text) if form != "as is" else text
    return f"{pad}{text}{glue}{pad}"


def spelled(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A word as exports spell it: any case, composed or not, padded, with a stray mark or space."""
    return st.builds(
        _spell,
        words,
        st.sampled_from(["as is", "as is", "upper", "lower", "title"]),
        st.sampled_from(["as is", "as is", "NFC", "NFD", "NFKD"]),
        st.sampled_from(["", "", *SPACES]),
        st.sampled_from(["", "", "", "\u0301", "Σ", ".", " ", "\u200d", "-"]),
    )


names = spelled(st.one_of(st.sampled_from(NAMES), scripts_text, any_text))
CITIES = (
    "Köln", "São Paulo", "Saint-Étienne", "İstanbul", "Łódź", "Москва", "Αθήνα", "東京", "서울", "मुंबई",
    "Zürich", "Reykjavík", "Ciudad de México", "ΣΑΣ",
)  # fmt: skip
STATES = (
    "New York", "N.Y.", "Île-de-France", "São Paulo", "Québec", "東京都", "Bayern", "Thüringen", "Ｎｅｗ Ｙｏｒｋ",
    "WASHINGTON", "Calif.", "महाराष्ट्र",
)  # fmt: skip
cities = spelled(st.sampled_from(CITIES))
states = spelled(st.sampled_from(STATES))
domains = st.sampled_from(("example.com", "bücher.de", "почта.рф", "例え.jp", "ΕΛ.gr", "münchen.DE", "x", "a.b.c"))
emails = st.builds(
    lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
    st.one_of(st.sampled_from(NAMES), scripts_text, st.from_regex(r"[a-zA-Z0-9._+-]{1,8}", fullmatch=True)),
    domains,
    st.sampled_from(["", "", " ", "\u00a0", "\u3000"]),
).map(lambda text: text.replace(" ", "") if text.count("@") == 1 and " " in text.strip() else text)
postal_codes = st.builds(
    lambda body, dash, space, width: (body[:3] + dash + space + body[3:]).translate(width),
    st.from_regex(r"[0-9A-Za-z]{3,9}", fullmatch=True),
    st.sampled_from(["", "-", "\u2010", "\u2013", "\u2212", "\uff0d", "\u301c", "_"]),
    st.sampled_from(["", " ", "\u00a0", "\u3000", "\u202f"]),
    st.sampled_from([{}, str.maketrans("0123456789", "０１２３４５６７８９"), str.maketrans("0123", "٠١٢٣")]),
)

_WIDE = str.maketrans("0123456789-+()", "０１２３４５６７８９－＋（）")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def _phone_text(region: str, tail: str, form: int, script: int, separator: str) -> str | None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    example = example or phonenumbers.example_number(region)
    if example is None:
        return None
    nsn = phonenumbers.national_significant_number(example)
    nsn = nsn[: max(1, len(nsn) - len(tail))] + tail[: len(nsn) - 1]
    try:
        number = phonenumbers.parse(f"+{example.country_code}{nsn}", None)
    except phonenumbers.NumberParseException:
        return None
    formats = (
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
    )
    text = phonenumbers.format_number(number, formats[form % 3])
    if form % 5 == 3:
        text = "00" + text.lstrip("+") if text.startswith("+") else text
    if form % 7 == 5:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
        prefix = metadata.national_prefix_for_parsing if metadata else None
        if prefix and prefix.isdigit():
            text = f"{prefix}{nsn}"  # the region's own trunk prefix (`8` in Russia, `06` in Hungary)
    text = text.replace(" ", separator)
    return text.translate((None, _WIDE, _ARABIC_INDIC, _DEVANAGARI)[script % 4] or {})


phones = st.builds(
    _phone_text,
    st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    st.from_regex(r"[0-9]{3,7}", fullmatch=True),
    st.integers(0, 104),
    st.sampled_from([0, 0, 0, 1, 2, 3]),
    st.sampled_from([" ", " ", "-", ".", "\u00a0", "\u3000", "\u2010", "\u202f", "\u2009", "\uff0d", "/"]),
).filter(lambda text: text is not None)
"""Every region's example mobile number with a random tail, formatted by phonenumbers nationally or
internationally (or `00`, or the region's own digit trunk prefix), with typographic separators, in
full-width, Arabic-Indic or Devanagari digits."""

international_texts = st.one_of(names, cities, states, emails, postal_codes, phones, scripts_text)
"""Everything above, for properties that take any text."""
