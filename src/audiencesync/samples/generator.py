"""Seeded messy customers: the kind of list a business actually exports.

The mess is the point: mixed case and stray whitespace, phone numbers in every national and
international habit (`+44 (0)…`, `00 33…`, national with trunk zero, spreadsheet floats), ZIP+4 and
ZIPs that lost their leading zero, state names and dotted forms, accented and non-Latin names,
cities like Köln, blank and invalid values, pre-hashed emails and all-zero advertising IDs.
Everything is drawn from one `random.Random(seed)`, so a seed always gives the same table.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
import pyarrow as pa
from anyascii import anyascii

FIRST_NAMES = (
    "Mary", "James", "Patricia", "John", "Jennifer", "Robert", "Linda", "Michael", "Elizabeth", "David",
    "Zoë", "José", "François", "Søren", "Björn", "Łukasz", "Ángel", "Chloé", "Renée", "Jean-Luc",
    "Mary-Ann", "Anne Marie", "Siobhán", "Nguyễn", "Александр", "Мария", "محمد", "प्रिया", "정민", "美咲",
    "Li", "Wei", "Fatima", "Aisha", "Kenji", "Olga", "Ahmed", "Priya", "Carlos", "Lucía",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "O'Brien", "St. John", "van der Berg", "McDonald", "Øster", "Müller", "García", "Nguyễn", "Kowalski",
    "Dubois", "Lefèvre", "Schröder", "Ivanov", "Иванова", "김", "田中", "王", "Smith-Jones", "D'Angelo",
    "Fernández", "Silva", "Singh", "Patel", "Kim", "Tanaka", "Rossi", "Jensen", "Novák", "Yılmaz", "Khan",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "Outlook.com", "hotmail.co.uk", "web.de", "orange.fr", "icloud.com")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class Region:
    """Where a customer lives and how people there write what we ask for."""

    code: str
    weight: float
    country_forms: tuple[str, ...]
    cities: tuple[str, ...]
    states: tuple[str, ...]
    postal: Callable[[random.Random], str]


def _pool(seed: int, size: int, low: int, high: int, width: int) -> tuple[str, ...]:
    rnd = random.Random(seed)
    return tuple(f"{rnd.randint(low, high):0{width}d}" for _ in range(size))


_US_ZIP_POOL = _pool(5, 6000, 501, 99950, 5)


def _us_zip(rnd: random.Random) -> str:
    """Customers cluster: a few thousand ZIPs, not a uniform draw over all 100,000."""
    zip5 = rnd.choice(_US_ZIP_POOL)
    roll = rnd.random()
    if roll < 0.12:
        return f"{zip5}-{rnd.randint(0, 9999):04d}"
    if roll < 0.2 and zip5.startswith("0"):
        return zip5.lstrip("0")
    if roll < 0.25:
        return f" {zip5} "
    return zip5


def _gb_postcode(rnd: random.Random) -> str:
    area = rnd.choice(("EC1A", "SW1A", "M1", "B33", "CR2", "LS1", "G2", "EH1"))
    code = f"{area} {rnd.randint(1, 9)}{rnd.choice('ABDEFGHJLNPQRSTUWXYZ')}{rnd.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    return code.lower() if rnd.random() < 0.2 else code


def _digits(count: int) -> Callable[[random.Random], str]:
    pool = _pool(count, 800, 0, 10**count - 1, count)
    return lambda rnd: rnd.choice(pool)


def _ca_postcode(rnd: random.Random) -> str:
    letters = "ABCEGHJKLMNPRSTVXY"
    first = f"{rnd.choice(letters)}{rnd.randint(0, 9)}{rnd.choice(letters)}"
    code = f"{first} {rnd.randint(0, 9)}{rnd.choice(letters)}{rnd.randint(0, 9)}"
    return code if rnd.random() < 0.8 else code.replace(" ", "")


def _jp_postcode(rnd: random.Random) -> str:
    return f"{rnd.randint(100, 999)}-{rnd.randint(0, 9999):04d}"


REGIONS = (
    Region("US", 0.70, ("US", "us", "USA", "United States", "U.S.", " usa ", "United States of America"),
           ("New York", "Los Angeles", "San Francisco", "Chicago", "Boston", "Seattle", "St. Louis",
            "Winston-Salem", "new york city", "HOUSTON", "Miami Beach"),
           ("NY", "ny", "New York", "N.Y.", "CA", "California", "Calif.", "TX", "Texas", "WA", "Washington",
            "MA", "Mass.", "IL", "Illinois", "FL", "fl", "D.C."), _us_zip),
    Region("CA", 0.06, ("CA", "Canada", "CAN"), ("Toronto", "Montréal", "Québec", "Vancouver"),
           ("ON", "Ontario", "QC", "Québec", "BC"), _ca_postcode),
    Region("GB", 0.08, ("GB", "UK", "United Kingdom", "U.K.", "GBR", "England"),
           ("London", "Manchester", "Edinburgh", "Birmingham"),
           ("England", "Greater London", "Scotland", "Greater Manchester"), _gb_postcode),
    Region("DE", 0.05, ("DE", "Germany", "DEU", "deutschland"), ("Köln", "München", "Düsseldorf", "Berlin"),
           ("Bayern", "Bavaria", "Nordrhein-Westfalen", "NRW", "Berlin"), _digits(5)),
    Region("FR", 0.04, ("FR", "France", "FRA"), ("Paris", "Lyon", "Saint-Étienne", "Besançon"),
           ("Île-de-France", "Auvergne-Rhône-Alpes"), _digits(5)),
    Region("AU", 0.02, ("AU", "Australia"), ("Sydney", "Melbourne"), ("NSW", "Victoria", "VIC"), _digits(4)),
    Region("MX", 0.02, ("MX", "Mexico", "México"), ("Ciudad de México", "Guadalajara"), ("CDMX", "Jalisco"),
           _digits(5)),
    Region("JP", 0.01, ("JP", "Japan"), ("東京", "大阪", "Tokyo"), ("東京都", "Osaka"), _jp_postcode),
    Region("BR", 0.01, ("BR", "Brazil", "Brasil"), ("São Paulo", "Rio de Janeiro"), ("SP", "RJ"), _digits(8)),
    Region("IN", 0.01, ("IN", "India", "IND"), ("Mumbai", "Bengaluru", "मुंबई"), ("Maharashtra", "Karnataka"),
           _digits(6)),
)  # fmt: skip


def _example_national(region: str) -> str:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.national_significant_number(number) if number else "5550100"


_MOBILE = {region.code: _example_national(region.code) for region in REGIONS}
_CALLING_CODE = {region.code: str(phonenumbers.country_code_for_region(region.code)) for region in REGIONS}
_TRUNK = {region.code: "" if region.code == "MX" else "0" for region in REGIONS}


def _phone(rnd: random.Random, region: str) -> str | None:
    roll = rnd.random()
    if roll < 0.06:
        return None
    if roll < 0.08:
        return rnd.choice(("", " ", "n/a", "123", "555-1234"))
    example = _MOBILE[region]
    keep = max(2, len(example) - 6)
    nsn = example[:keep] + "".join(rnd.choice("0123456789") for _ in range(len(example) - keep))
    code = _CALLING_CODE[region]
    if region in ("US", "CA"):
        nsn = f"{rnd.randint(201, 989)}{rnd.randint(200, 999)}{rnd.randint(0, 9999):04d}"
        style = rnd.random()
        if style < 0.3:
            return f"({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"
        if style < 0.5:
            return f"{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
        if style < 0.6:
            return f"+1 {nsn[:3]} {nsn[3:6]} {nsn[6:]}"
        if style < 0.7:
            return f"1{nsn}"
        if style < 0.75:
            return f"{nsn}.0"
        if style < 0.8:
            return f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}"
        return nsn
    trunk = _TRUNK[region]
    style = rnd.random()
    if style < 0.3:
        return f"+{code} {nsn[:3]} {nsn[3:]}"
    if style < 0.45:
        return f"+{code} ({trunk or '0'}){nsn}" if trunk else f"+{code}{nsn}"
    if style < 0.6:
        return f"00 {code} {nsn[:2]} {nsn[2:]}"
    return f"{trunk}{nsn[:3]} {nsn[3:]}"


def _email(rnd: random.Random, first: str, last: str, index: int) -> str | None:
    roll = rnd.random()
    if roll < 0.05:
        return None
    if roll < 0.07:
        return rnd.choice(("", "   ", "alice@", "bob at example.com", "carol@example", "@example.com"))
    local = "".join(ch for ch in anyascii(f"{first}.{last}").lower() if ch.isalnum() or ch == ".").strip(".")
    address = f"{local or 'customer'}{index}@{rnd.choice(EMAIL_DOMAINS)}"
    if roll < 0.12:
        digest = hashlib.sha256(address.lower().encode()).hexdigest()
        return digest.upper() if rnd.random() < 0.5 else digest
    style = rnd.random()
    if style < 0.2:
        return address.upper()
    if style < 0.35:
        return f"  {address.title()} "
    return address


def _birthday(rnd: random.Random) -> str | None:
    roll = rnd.random()
    if roll < 0.12:
        return None
    if roll < 0.14:
        return rnd.choice(("", "1850-01-01", "02/30/1990", "90", "unknown", "2099-01-01"))
    year, month, day = rnd.randint(1935, 2007), rnd.randint(1, 12), rnd.randint(1, 28)
    style = rnd.random()
    if style < 0.75:
        return f"{year}-{month:02d}-{day:02d}"
    if style < 0.88:
        return f"{month:02d}/{day:02d}/{year}"
    if style < 0.93:
        return f"{day} {MONTHS[month - 1]} {year}"
    return f"{year}"


def _gender(rnd: random.Random) -> str | None:
    return rnd.choice(("M", "F", "m", "f", "Male", "Female", "female", "male", "Woman", " F ", "other", "", None, "U"))


def _madid(rnd: random.Random) -> str | None:
    roll = rnd.random()
    if roll < 0.4:
        return None
    if roll < 0.45:
        return "00000000-0000-0000-0000-000000000000"
    value = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    return value.upper() if rnd.random() < 0.5 else value


def _messy_case(rnd: random.Random, text: str) -> str:
    roll = rnd.random()
    if roll < 0.1:
        return text.upper()
    if roll < 0.2:
        return text.lower()
    if roll < 0.25:
        return f" {text}  "
    return text


SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("email", pa.string()),
        ("phone", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("gender", pa.string()),
        ("birthday", pa.string()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("zip", pa.string()),
        ("country", pa.string()),
        ("madid", pa.string()),
        ("ltv", pa.float64()),
    ]
)


def generate_customers(n: int, seed: int = 0) -> pa.Table:
    """`n` messy customers, the same ones for the same seed (see the module docstring)."""
    rnd = random.Random(seed)
    weights = [region.weight for region in REGIONS]
    columns: dict[str, list[object]] = {field.name: [] for field in SCHEMA}
    regions = rnd.choices(REGIONS, weights=weights, k=n)
    for index, region in enumerate(regions):
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        columns["customer_id"].append(100000 + index)
        columns["email"].append(_email(rnd, first, last, index))
        columns["phone"].append(_phone(rnd, region.code))
        columns["first_name"].append(_messy_case(rnd, first) if rnd.random() > 0.03 else rnd.choice(("", "-", "123")))
        columns["last_name"].append(_messy_case(rnd, last) if rnd.random() > 0.03 else None)
        columns["gender"].append(_gender(rnd))
        columns["birthday"].append(_birthday(rnd))
        columns["city"].append(_messy_case(rnd, rnd.choice(region.cities)) if rnd.random() > 0.05 else None)
        columns["state"].append(rnd.choice(region.states) if rnd.random() > 0.08 else None)
        columns["zip"].append(region.postal(rnd) if rnd.random() > 0.05 else rnd.choice(("", None, "-")))
        country_roll = rnd.random()
        country = rnd.choice(region.country_forms) if country_roll > 0.1 else rnd.choice((None, "", "Narnia"))
        columns["country"].append(country)
        columns["madid"].append(_madid(rnd))
        ltv = round(rnd.lognormvariate(4, 1.2), 2) if rnd.random() > 0.1 else rnd.choice((0.0, float("nan"), -5.0))
        columns["ltv"].append(ltv)
    return pa.table(columns, schema=SCHEMA)
