"""Match-key throughput: our vectorized `match_table` against Meta's SDK on the same messy rows.

Two profiles, both run by default, each side by side with the SDK:

- `us`: `generate_customers` (seeded), the demo's list: mostly US, mostly ASCII.
- `international`: seeded rows made here, with the world's spellings: at least half of the first and
  last names carry non-ASCII letters and a fifth are in non-Latin scripts (Cyrillic, Greek, Arabic,
  Hebrew, Devanagari, Bengali, Tamil, Thai, Georgian, Armenian, Han, kana, Hangul), some decomposed (NFD),
  upper-cased or padded with Unicode spaces; at least a third of the emails carry non-ASCII letters
  (`josé.garcía12@example.com`, `иван.петров7@почта.рф`); phones from 16 countries in national and
  international forms (`+1 415.555.0100`, `1-415-555-0100`, `030 12345678`, `+49 30 12345678`,
  `0049 …`, `+44 (0)…`, full-width digits from Japanese input); US ZIP+4 and foreign postal codes;
  every email and every phone distinct. The shares are measured and printed with the figures.

Both get the ten keys EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, GEN, DOBY. The SDK gets the same
values as strings (it calls `.strip()` on each, so a missing value is given as ""), through
`CustomAudience.format_params(schema, rows, is_raw=True)`. Each side runs once to warm up, then the
two alternate `--repeat` times so that a burst of load from other work hits both; the best run of
each side counts, on wall clock and on CPU seconds (all threads of the process) separately.

`match_table` runs its keys on a thread pool as wide as the machine (both cores here) and polars and
the hashing release the GIL; the SDK is single-threaded Python. The target, ≥ 10x the SDK's rows/s,
is on wall clock; the CPU-time ratio is printed beside it: it is what the target would be on one core.
Each round's own ratios are printed too, to show the spread that load from other work causes.

Per-key cost: each key alone (its column, and the country column for keys that read it) through
`match_table(..., threads=1)` and through the SDK, best of `--repeat`: µs per row on each side, and
how many values our side handed to the scalar (Python) normalizer, so the next slow key is visible.

    .venv/bin/python bench/matchkeys.py [--profile us|international|both] [--rows 200000] [--seed 1]
                                        [--repeat 3] [--no-per-key]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
import unicodedata
from collections.abc import Callable

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from anyascii import anyascii
from facebook_business.adobjects.customaudience import CustomAudience

from audiencesync.matchkeys import match_table
from audiencesync.samples import generate_customers

SCHEMA = ["EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY", "GEN", "DOBY"]
SOURCE = ["email", "phone", "first_name", "last_name", "city", "state", "zip", "country", "gender", "birthday"]
COUNTRY_KEYS = {"PHONE", "ST", "ZIP"}
TARGET_RATIO = 10.0

# ---------------------------------------------------------------- the international profile

ASCII_FIRST = (
    "Mary", "James", "Patricia", "John", "Jennifer", "Robert", "Linda", "Michael", "David", "Sarah", "Emma", "Liam",
    "Olivia", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sophia", "Mateo", "Anna", "Paul", "Laura", "Peter", "Julia",
    "Marco", "Giulia", "Luca", "Hans", "Eva", "Jan", "Piotr", "Ahmed", "Fatima", "Kenji", "Wei", "Priya", "Carlos",
    "Diego", "Ali", "Mohammed", "Yuki", "Ivan", "Olga", "Sven", "Ingrid", "Pedro", "Lucas", "Tomas", "Elena",
)  # fmt: skip
ACCENTED_FIRST = (
    "José", "María", "Zoë", "François", "Hélène", "Søren", "Björn", "Łukasz", "Ángel", "Chloé", "Renée",
    "Siobhán", "Jürgen", "Jörg", "Günter", "Małgorzata", "Paweł", "Wojciech", "Tomáš", "Jiří", "Ömer", "Çağla",
    "Şükrü", "İbrahim", "Gülşen", "Thảo", "Đức", "João", "Conceição", "Gonçalo", "Inês", "Mónica", "Raúl",
    "Iñaki", "Núria", "Jesús", "Agnès", "Geneviève", "Maëlle", "Noémie", "Anaïs", "Élodie", "Océane", "Åsa",
    "Øyvind", "Márton", "Zsófia", "Ștefan", "Sigurður", "Þór", "Dagný", "Lucía", "Sebastián", "Ramón", "Héctor",
)  # fmt: skip
NON_LATIN_FIRST = (
    "Александр", "Мария", "Дмитрий", "Анна", "Ольга", "Сергей", "Наталья", "Иван", "Олена", "Тарас",
    "Γιώργος", "Μαρία", "Νίκος", "Ελένη", "ΚΩΝΣΤΑΝΤΙΝΟΣ", "محمد", "فاطمة", "أحمد", "علي", "يوسف", "דוד", "שרה",
    "יוסף", "प्रिया", "राहुल", "अनन्या", "अर्जुन", "রহিম", "সুমি", "கார்த்திக்", "สมชาย", "สุดา", "美咲", "翔太",
    "陽菜", "さくら", "ゆうき", "伟", "芳", "秀英", "明", "민준", "서연", "지우", "정민", "ნინო", "Արամ",
)  # fmt: skip
ASCII_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Anderson", "Thomas",
    "Moore", "O'Brien", "St. John", "van der Berg", "McDonald", "Rossi", "Russo", "Bianchi", "Silva", "Santos",
    "Costa", "Singh", "Patel", "Kumar", "Khan", "Kim", "Lee", "Park", "Tanaka", "Sato", "Suzuki", "Wang", "Li",
    "Zhang", "Chen", "Ivanov", "Smirnov", "Jensen", "Hansen", "Nielsen", "Bakker", "de Vries", "Janssen", "Murphy",
    "Kelly", "Kowalski", "Dubois", "Popescu", "Svoboda",
)  # fmt: skip
ACCENTED_LAST = (
    "García", "Fernández", "López", "Martínez", "Pérez", "González", "Rodríguez", "Sánchez", "Gómez", "Muñoz",
    "Peña", "Ibáñez", "Müller", "Schröder", "Schäfer", "Weiß", "Groß", "Köhler", "Lefèvre", "Brontë", "Côté",
    "Gagné", "Lévesque", "Wiśniewski", "Wójcik", "Kamiński", "Dvořák", "Novák", "Černý", "Yılmaz", "Öztürk",
    "Şahin", "Çelik", "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Đặng", "Øster", "Søndergaard", "Åberg",
    "Jääskeläinen", "Ó Súilleabháin", "Gonçalves", "Magalhães", "Simões", "Ștefănescu", "Kovač", "Horváth",
    "Szűcs", "Björk", "Sigurðsson",
)  # fmt: skip
NON_LATIN_LAST = (
    "Иванов", "Смирнова", "Кузнецов", "Попова", "Соколов", "Шевченко", "Παπαδόπουλος", "Γεωργίου",
    "ΠΑΠΑΔΟΠΟΥΛΟΣ", "العلي", "حسن", "الخطيب", "כהן", "לוי", "शर्मा", "वर्मा", "पटेल", "চৌধুরী", "สุขใจ", "田中",
    "佐藤", "鈴木", "高橋", "渡辺", "王", "李", "张", "刘", "陈", "김", "이", "박", "최", "ბერიძე", "Պետրոսյան",
)  # fmt: skip
PLAIN_DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "Outlook.com",
    "hotmail.co.uk",
    "web.de",
    "orange.fr",
    "icloud.com",
    "gmx.de",
    "libero.it",
    "uol.com.br",
    "naver.com",
    "qq.com",
    "mail.ru",
    "wp.pl",
    "example.com",
)
IDN_DOMAINS = ("bücher.de", "почта.рф", "correo.españa.es", "münchen.de", "例え.jp", "ทดสอบ.th")

SPACES = (" ", "\u00a0", "\u3000", "\t")

# Region: weight, country spellings, cities, states, postal code maker.
Postal = Callable[[random.Random], str]


def _n(rnd: random.Random, digits: int) -> str:
    return f"{rnd.randrange(10**digits):0{digits}d}"


def _us_zip(rnd: random.Random) -> str:
    zip5 = f"{rnd.randint(501, 99950):05d}"
    roll = rnd.random()
    if roll < 0.4:
        return f"{zip5}-{_n(rnd, 4)}"
    if roll < 0.47 and zip5.startswith("0"):
        return zip5.lstrip("0")
    return zip5


def _letters(rnd: random.Random, count: int) -> str:
    return "".join(rnd.choice("ABCDEFGHJKLMNPRSTUWXYZ") for _ in range(count))


POSTAL: dict[str, Postal] = {
    "US": _us_zip,
    "GB": lambda r: f"{r.choice(('EC1A', 'SW1A', 'M1', 'B33', 'LS1', 'G2'))} {r.randint(1, 9)}{_letters(r, 2)}",
    "CA": lambda r: f"{_letters(r, 1)}{r.randint(0, 9)}{_letters(r, 1)} {r.randint(10, 99)}{_letters(r, 1)}",
    "DE": lambda r: _n(r, 5),
    "FR": lambda r: _n(r, 5),
    "ES": lambda r: _n(r, 5),
    "IT": lambda r: _n(r, 5),
    "BR": lambda r: f"{_n(r, 5)}-{_n(r, 3)}",
    "MX": lambda r: _n(r, 5),
    "IN": lambda r: _n(r, 6) if r.random() < 0.8 else f"{_n(r, 3)} {_n(r, 3)}",
    "JP": lambda r: f"{_n(r, 3)}-{_n(r, 4)}" if r.random() < 0.9 else f"〒{_n(r, 3)}-{_n(r, 4)}",
    "KR": lambda r: _n(r, 5),
    "CN": lambda r: _n(r, 6),
    "RU": lambda r: _n(r, 6),
    "PL": lambda r: f"{_n(r, 2)}-{_n(r, 3)}",
    "TR": lambda r: _n(r, 5),
}
REGIONS: dict[str, tuple[float, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "US": (0.30, ("US", "us", "USA", "United States", "U.S."), ("New York", "San José", "Los Angeles", "Chicago",
           "Española", "Boston", "HOUSTON", "Coeur d'Alene"), ("NY", "New York", "CA", "California", "TX", "N.M.")),
    "GB": (0.06, ("GB", "UK", "United Kingdom", "GBR"), ("London", "Manchester", "Edinburgh"), ("England", "Scotland")),
    "CA": (0.04, ("CA", "Canada", "CAN"), ("Toronto", "Montréal", "Québec"), ("ON", "Ontario", "QC", "Québec")),
    "DE": (0.07, ("DE", "Germany", "DEU"), ("Köln", "München", "Düsseldorf", "Berlin"), ("Bayern", "NRW", "Thüringen")),
    "FR": (0.06, ("FR", "France", "FRA"), ("Paris", "Saint-Étienne", "Besançon", "Nîmes"), ("Île-de-France", "Corse")),
    "ES": (0.05, ("ES", "Spain", "ESP"), ("Málaga", "Córdoba", "A Coruña", "Madrid"), ("Andalucía", "Aragón")),
    "IT": (0.04, ("IT", "Italy", "ITA"), ("Forlì", "Milano", "Cantù"), ("Lombardia", "Emilia-Romagna")),
    "BR": (0.05, ("BR", "Brazil", "BRA"), ("São Paulo", "Brasília", "Goiânia"), ("SP", "São Paulo", "Paraná")),
    "MX": (0.04, ("MX", "Mexico", "MEX"), ("Ciudad de México", "Querétaro", "Mérida"), ("CDMX", "Yucatán")),
    "IN": (0.06, ("IN", "India", "IND"), ("Mumbai", "मुंबई", "Bengaluru", "चेन्नई"), ("Maharashtra", "महाराष्ट्र")),
    "JP": (0.04, ("JP", "Japan", "JPN"), ("東京", "大阪", "Tokyo", "札幌"), ("東京都", "大阪府", "Hokkaidō")),
    "KR": (0.03, ("KR", "Korea, Republic of", "KOR"), ("서울", "부산", "Seoul"), ("서울특별시", "경기도")),
    "CN": (0.03, ("CN", "China", "CHN"), ("北京", "上海", "Shenzhen"), ("北京市", "广东省")),
    "RU": (0.03, ("RU", "Russia", "RUS"), ("Москва", "Санкт-Петербург", "Казань"), ("Москва", "Татарстан")),
    "PL": (0.03, ("PL", "Poland", "POL"), ("Kraków", "Łódź", "Gdańsk"), ("Małopolskie", "Łódzkie")),
    "TR": (0.03, ("TR", "Turkey", "TUR"), ("İstanbul", "Ankara", "İzmir"), ("İstanbul", "Ankara")),
}  # fmt: skip


def _phone_templates(region: str) -> tuple[str, int, str, str]:
    """(country code, NSN prefix kept, national form, international form) from phonenumbers' own example
    mobile number: its national and international formatting with the random tail as `#`."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    nsn = phonenumbers.national_significant_number(example)
    keep = max(2, len(nsn) - 7)
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return str(example.country_code), keep, _template(national, nsn, keep), _template(international, nsn, keep)


def _template(formatted: str, nsn: str, keep: int) -> str:
    """Each digit of the NSN's random tail, found in order from the end, becomes `#`."""
    chars = list(formatted)
    tail = len(nsn) - keep
    position = len(chars)
    while tail:
        position -= 1
        if chars[position].isdigit():
            chars[position] = "#"
            tail -= 1
    return "".join(chars)


_FULL_WIDTH = str.maketrans("0123456789-+()", "０１２３４５６７８９－＋（）")


def _fill(template: str, digits: str) -> str:
    out = iter(digits)
    return "".join(next(out) if ch == "#" else ch for ch in template)


def _intl_phone(rnd: random.Random, region: str, templates: dict[str, tuple[str, int, str, str]], tail: str) -> str:
    code, _, national, international = templates[region]
    if region == "US" or region == "CA":
        area, mid, last = f"{rnd.randint(201, 989)}", f"{rnd.randint(200, 999)}", tail[-4:]
        return rnd.choice((
            f"+1 {area}.{mid}.{last}", f"1-{area}-{mid}-{last}", f"({area}) {mid}-{last}", f"{area}-{mid}-{last}",
            f"{area}.{mid}.{last}", f"+1{area}{mid}{last}", f"{area} {mid} {last}", f"+1 ({area}) {mid}-{last}",
        ))  # fmt: skip
    roll = rnd.random()
    if roll < 0.35:
        text = _fill(national, tail)
    elif roll < 0.7:
        text = _fill(international, tail)
    elif roll < 0.8:
        text = "00" + _fill(international, tail)[1:]
    elif roll < 0.88:
        text = _fill(international, tail).replace(" ", "", 1) if rnd.random() < 0.5 else _fill(international, tail)
        text = text.replace(" ", rnd.choice(("-", ".", " ")))
    elif roll < 0.94 and _fill(national, tail).startswith("0"):
        text = f"+{code} (0){_fill(national, tail)[1:]}"
    else:
        text = "".join(ch for ch in _fill(national, tail) if ch.isdigit())
    if region == "JP" and rnd.random() < 0.25:
        text = text.translate(_FULL_WIDTH)
    return text


def _variant(rnd: random.Random, name: str) -> str:
    """How a name arrives: as typed, upper or lower case, decomposed (NFD, as macOS exports), padded."""
    roll = rnd.random()
    if roll < 0.15:
        name = name.upper()
    elif roll < 0.25:
        name = name.lower()
    if rnd.random() < 0.12:
        name = unicodedata.normalize("NFD", name)
    if rnd.random() < 0.06:
        name = f"{rnd.choice(SPACES)}{name}{rnd.choice(SPACES)}"
    return name


def _name(rnd: random.Random, pools: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], joiner: str) -> str:
    """A fifth non-Latin, two fifths accented Latin, the rest plain Latin; some double names."""
    ascii_pool, accented, non_latin = pools
    roll = rnd.random()
    pool = non_latin if roll < 0.22 else accented if roll < 0.64 else ascii_pool
    name = rnd.choice(pool)
    if pool is not non_latin and rnd.random() < 0.25:
        name = f"{name}{rnd.choice(joiner)}{rnd.choice(pool)}"
    return name


def _local(rnd: random.Random, first: str, last: str, number: int) -> str:
    native = rnd.random() < (0.35 if first.isascii() or not first[0].isalpha() else 0.7)
    first_part, last_part = (first, last) if native else (anyascii(first), anyascii(last))
    first_part = "".join(ch for ch in first_part.lower() if ch.isalnum())
    last_part = "".join(ch for ch in last_part.lower() if ch.isalnum())
    form = rnd.random()
    if form < 0.4:
        local = f"{first_part}.{last_part}{number}"
    elif form < 0.6:
        local = f"{first_part}{last_part}{number}"
    elif form < 0.8:
        local = f"{first_part[:1]}{last_part}.{number}"
    else:
        local = f"{last_part}_{first_part}{number}"
    return local


def _email(rnd: random.Random, first: str, last: str, number: int) -> str | None:
    roll = rnd.random()
    if roll < 0.04:
        return None
    if roll < 0.06:
        return rnd.choice(("", "n/a", "josé@", "sin correo", "test@localhost"))
    domain = rnd.choice(IDN_DOMAINS) if rnd.random() < 0.08 else rnd.choice(PLAIN_DOMAINS)
    email = f"{_local(rnd, first, last, number)}@{domain}"
    style = rnd.random()
    if style < 0.15:
        email = email[:1].upper() + email[1:]
    elif style < 0.2:
        email = email.upper()
    elif style < 0.25:
        email = f" {email} "
    if rnd.random() < 0.05:
        email = unicodedata.normalize("NFD", email)
    return email


def _birthday(rnd: random.Random) -> str | None:
    roll = rnd.random()
    if roll < 0.08:
        return None
    day = dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randrange(365 * 65))
    forms = (
        day.isoformat(),
        f"{day.month:02d}/{day.day:02d}/{day.year}",
        str(day.year),
        f"{day.day} {day.strftime('%B')} {day.year}",
        f"{day.year}-{day.month}-{day.day}",
    )
    return rnd.choice(forms)


def international_customers(rows: int, seed: int) -> pa.Table:
    """`rows` seeded customers from 16 countries (see the module docstring)."""
    rnd = random.Random(seed)
    templates = {region: _phone_templates(region) for region in REGIONS}
    codes = list(REGIONS)
    regions = rnd.choices(codes, weights=[REGIONS[c][0] for c in codes], k=rows)
    numbers = rnd.sample(range(1, 100 * rows), rows)
    used_phones: set[str] = set()
    first_pools = (ASCII_FIRST, ACCENTED_FIRST, NON_LATIN_FIRST)
    last_pools = (ASCII_LAST, ACCENTED_LAST, NON_LATIN_LAST)
    out: dict[str, list[str | None]] = {name: [] for name in SOURCE}
    for index, region in enumerate(regions):
        _, country_forms, cities, states = REGIONS[region]
        first, last = _name(rnd, first_pools, " -"), _name(rnd, last_pools, " -")
        out["first_name"].append(_variant(rnd, first) if rnd.random() > 0.03 else rnd.choice(("", "-", "N/A")))
        out["last_name"].append(_variant(rnd, last) if rnd.random() > 0.03 else None)
        out["email"].append(_email(rnd, first, last, numbers[index]))
        while True:
            tail = "".join(rnd.choice("0123456789") for _ in range(7))
            phone = _intl_phone(rnd, region, templates, tail)
            digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone) if ch.isdigit())
            if digits not in used_phones:
                used_phones.add(digits)
                break
        out["phone"].append(phone if rnd.random() > 0.04 else rnd.choice((None, "", "n/a", "12")))
        out["city"].append(_variant(rnd, rnd.choice(cities)) if rnd.random() > 0.05 else None)
        out["state"].append(rnd.choice(states) if rnd.random() > 0.08 else None)
        out["zip"].append(POSTAL[region](rnd) if rnd.random() > 0.05 else rnd.choice(("", None)))
        out["country"].append(rnd.choice(country_forms) if rnd.random() > 0.05 else None)
        out["gender"].append(rnd.choice(("M", "F", "m", "f", "Male", "Female", "female", " F ", "", None)))
        out["birthday"].append(_birthday(rnd))
    return pa.table({name: pa.array(values, pa.string()) for name, values in out.items()})


def profile_shares(table: pa.Table) -> dict[str, float]:
    """The measured shares that define the international profile (printed with its figures)."""

    def share(column: str, test: Callable[[str], bool]) -> float:
        values = table.column(column).to_pylist()
        return sum(1 for v in values if v and test(v)) / len(values)

    def non_latin(text: str) -> bool:
        letters = [ch for ch in text if ch.isalpha()]
        return bool(letters) and not any("LATIN" in unicodedata.name(ch, "") for ch in letters)

    emails = table.column("email")
    phones = pc.drop_null(table.column("phone"))
    return {
        "non-ASCII first names": share("first_name", lambda v: any(ch.isalpha() and not ch.isascii() for ch in v)),
        "non-ASCII last names": share("last_name", lambda v: any(ch.isalpha() and not ch.isascii() for ch in v)),
        "non-Latin first names": share("first_name", non_latin),
        "non-Latin last names": share("last_name", non_latin),
        "non-ASCII emails": share("email", lambda v: any(ch.isalpha() and not ch.isascii() for ch in v)),
        "distinct emails": len(pc.unique(emails)) / max(1, len(emails) - emails.null_count),
        "distinct phones": len(pc.unique(phones)) / max(1, len(phones)),
        "ZIP+4": share("zip", lambda v: len(v) == 10 and v[5] == "-" and v.replace("-", "").isdigit()),
    }


# ---------------------------------------------------------------- timing


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _race(
    sides: dict[str, Callable[[], object]], repeat: int, runs: list[dict[str, tuple[float, float]]] | None = None
) -> dict[str, tuple[float, float]]:
    """Best wall and best CPU seconds of each side over alternating runs, after one warm-up each;
    each round's (wall, cpu) per side is appended to `runs` when given."""
    for run in sides.values():
        run()
    best = {name: (float("inf"), float("inf")) for name in sides}
    for _ in range(repeat):
        round_: dict[str, tuple[float, float]] = {}
        for name, run in sides.items():
            wall, cpu = round_[name] = _timed(run)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        if runs is not None:
            runs.append(round_)
    return best


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _sdk_rows(table: pa.Table) -> list[list[str]]:
    return [["" if value is None else str(value) for value in row.values()] for row in table.to_pylist()]


def _per_key(table: pa.Table, repeat: int) -> None:
    """Each key alone through `match_table(threads=1)` and through the SDK, CPU µs per row. PHONE, ST
    and ZIP read the member's country, so they run with the COUNTRY column mapped and COUNTRY's own
    cost (measured alone first) is subtracted."""
    rows = table.num_rows
    print(f"  per key (each alone, one thread, CPU µs per row, best of {repeat}; slowest first):")
    print(f"    {'key':<9}{'ours':>7}{'SDK':>8}{'ratio':>8}{'to scalar':>11}")
    lines = []
    country_cost = 0.0
    for key, column in sorted(zip(SCHEMA, SOURCE, strict=True), key=lambda pair: pair[0] != "COUNTRY"):
        uses_country = key in COUNTRY_KEYS
        sub = table.select([column, "country"]) if uses_country else table.select([column])
        mapping = {key: column, "COUNTRY": "country"} if uses_country else {key: column}
        mapping |= {"FI": None} if key == "FN" else {}
        values = [["" if v is None else str(v)] for v in table.column(column).to_pylist()]
        best = _race(
            {
                "ours": lambda sub=sub, mapping=mapping: match_table(
                    sub, columns=mapping, default_country="US", threads=1
                ),
                "sdk": lambda values=values, key=key: CustomAudience.format_params([key], values, is_raw=True),
            },
            repeat,
        )
        result = match_table(sub, columns=mapping, default_country="US", threads=1)
        ours = best["ours"][1] / rows * 1e6 - (country_cost if uses_country else 0.0)
        if key == "COUNTRY":
            country_cost = ours
        sdk = best["sdk"][1] / rows * 1e6
        lines.append((ours, f"    {key:<9}{ours:7.2f}{sdk:8.2f}{sdk / max(ours, 1e-9):7.1f}x{result.scalar[key]:11,}"))
    for _, line in sorted(lines, reverse=True):
        print(line)
    total = sum(cost for cost, _ in lines)
    print(f"    {'all':<9}{total:7.2f}  (sum of the keys alone; the full run shares work and threads)")


def run_profile(profile: str, rows: int, seed: int, repeat: int, per_key: bool) -> float:
    table = (generate_customers(rows, seed=seed) if profile == "us" else international_customers(rows, seed)).select(
        SOURCE
    )
    columns = dict(zip(SCHEMA, SOURCE, strict=True)) | {"DOBM": None, "DOBD": None, "FI": None}
    sdk_rows = _sdk_rows(table)
    load_before = _load()
    rounds: list[dict[str, tuple[float, float]]] = []
    best = _race(
        {
            "ours": lambda: match_table(table, columns=columns, default_country="US"),
            "sdk": lambda: CustomAudience.format_params(SCHEMA, sdk_rows, is_raw=True),
        },
        repeat,
        rounds,
    )
    load_after = _load()
    (ours, ours_cpu), (sdk, sdk_cpu) = best["ours"], best["sdk"]
    result = match_table(table, columns=columns, default_country="US")
    ratio, cpu_ratio = sdk / ours, sdk_cpu / ours_cpu
    print(f"== profile {profile}: {rows:,} rows (seed {seed}), keys {', '.join(SCHEMA)}")
    print(f"  cpus {os.cpu_count()}, load average (1/5/15 min) before {load_before}, after {load_after}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    if profile == "international":
        shares = profile_shares(table)
        print("  profile: " + ", ".join(f"{name} {value:.0%}" for name, value in shares.items()))
    print(f"  audiencesync match_table : {ours:7.3f} s wall {rows / ours:11,.0f} rows/s   {ours_cpu:7.3f} CPU s")
    print(f"  facebook-business SDK    : {sdk:7.3f} s wall {rows / sdk:11,.0f} rows/s   {sdk_cpu:7.3f} CPU s")
    verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(
        f"  wall-clock ratio {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x: {verdict}), CPU-time ratio {cpu_ratio:.1f}x"
    )
    spread = ", ".join(f"{r['sdk'][0] / r['ours'][0]:.1f}x/{r['sdk'][1] / r['ours'][1]:.1f}x" for r in rounds)
    print(f"  each round (wall/CPU ratio): {spread}; match_table used {os.cpu_count()} worker threads")
    sent = {key: result.table.num_rows - result.table.column(key).null_count for key in SCHEMA}
    print("  sent per key: " + ", ".join(f"{key} {count:,}" for key, count in sent.items()))
    print("  values sent to the scalar path: " + ", ".join(f"{k} {v:,}" for k, v in result.scalar.items() if v))
    if per_key:
        _per_key(table, repeat)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("us", "international", "both"), default="both")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-per-key", dest="per_key", action="store_false")
    args = parser.parse_args()
    profiles = ("us", "international") if args.profile == "both" else (args.profile,)
    for profile in profiles:
        run_profile(profile, args.rows, args.seed, args.repeat, args.per_key)


if __name__ == "__main__":
    main()
