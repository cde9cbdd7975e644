"""Deterministic generator of Pinterest-like source rows, dirt included.

The rates below reproduce measured properties of the real dataset (see README, "Source data"). Rows come
out grouped by poster: every row of a poster repeats its name, follower count, identity and location.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pinpipe.common.schema import (
    IMAGE_SRC_ERROR,
    NO_DESCRIPTION,
    NO_DESCRIPTION_STORY,
    NO_TAGS,
    NO_TITLE,
    UNTITLED,
    USER_INFO_ERROR,
)

DEFAULT_ROWS = 11_154

CATEGORIES = (
    "art", "beauty", "christmas", "diy-and-crafts", "education", "event-planning", "finance",
    "home-decor", "mens-fashion", "quotes", "tattoos", "travel", "vehicles",
)

# Placeholders the real data uses for missing values; the Spark cleaning nulls exactly these.
STORY_FORMAT = "multi-video(story page format)"
ELLIPSIS_NBSP = "\u2026\u00a0"

# Target rates (fractions of rows).
FOLLOWER_ERROR = 0.007  # "User Info Error" instead of a count
# Follower counts per row in a public sample of 2,004 real rows, as (quantile, count): plain digits below 1k
# (18 %), "<n>k" up to 999k, "<n>M" from 1M (7.5 %); median 30,000, heavy-tailed. Between the points the
# count is interpolated in log space.
FOLLOWER_QUANTILES = ((0.0, 1.0), (0.18, 1_000.0), (0.25, 4_000.0), (0.50, 30_000.0), (0.75, 211_000.0),
                      (0.90, 942_000.0), (0.925, 1_000_000.0), (1.0, 15_999_999.0))
# Posters with more followers post more: a poster in the lowest 18 % of sizes has one row, the top 20 % three,
# the rest two (about one poster per two rows). So the median per distinct poster (~14,000 in the sample) is
# below the median per row.
RUN_SPLITS = (0.18, 0.80)
VIDEO, STORY = 0.03, 0.07  # the rest are images
NO_DESCRIPTION_RATE = 0.015
NO_TAGS_RATE = 0.014
IMAGE_ERROR_RATE = 0.024
UNTITLED_RATE, EMPTY_TEXT_RATE = 0.004, 0.002
COMMA_RATE, QUOTE_RATE, NEWLINE_RATE, ELLIPSIS_RATE = 0.40, 0.03, 0.002, 1 / 3
SOUTH_POLE_RATE = 0.30  # the real latitudes pile up below -80
YOUNG_RATE = 0.44  # ages 20-24

JOIN_START, JOIN_END = datetime(2015, 10, 1), datetime(2017, 10, 1)
POST_START, POST_END = datetime(2017, 10, 1), datetime(2022, 10, 31, 23, 59, 59)

WORDS = {
    "art": "painting sketch watercolor canvas abstract portrait acrylic drawing gallery mural ink palette",
    "beauty": "makeup skincare lipstick glow routine nails serum hair curls blush mascara contour",
    "christmas": "tree ornaments wreath festive cookies gifts stocking lights garland snow cozy holiday",
    "diy-and-crafts": "handmade craft glue paper yarn upcycle kids felt sewing stencil jar decor",
    "education": "learning classroom teacher worksheet reading math science lesson students study kids notes",
    "event-planning": "wedding party decor table centerpiece balloon invitation venue theme birthday bridal",
    "finance": "budget savings money debt invest frugal income plan retire credit side hustle",
    "home-decor": "living room bedroom kitchen cozy farmhouse shelf rug plants modern boho lighting",
    "mens-fashion": "outfit suit sneakers style jacket denim watch casual streetwear grooming boots",
    "quotes": "inspiration life love motivation happiness words wisdom strength hope dreams smile",
    "tattoos": "ink tattoo minimalist sleeve floral linework script small wrist arm design",
    "travel": "destination beach mountains city guide itinerary roadtrip hotel adventure backpacking europe",
    "vehicles": "car truck classic engine motorcycle custom ride jeep restoration wheels speed",
}
WORDS = {category: tuple(text.split()) for category, text in WORDS.items()}
FILLER = tuple("the best easy ideas for your this and with a of to diy how simple amazing new".split())

FIRST_NAMES = tuple(
    "Alexandria Andrew Angela Ashley Brandon Brian Christopher Daniel David Denise Elizabeth Emily Eric "
    "Gary Heather Jacob James Jennifer Jessica John Joseph Joshua Karen Kevin Kimberly Laura Linda Lisa "
    "Mark Matthew Melissa Michael Michelle Nicole Patricia Rachel Rebecca Robert Ryan Sarah Stephanie "
    "Steven Susan Thomas Timothy William".split()
)
LAST_NAMES = tuple(
    "Allen Anderson Baker Brown Campbell Carter Clark Collins Davis Edwards Evans Garcia Gonzalez Green "
    "Hall Harris Hernandez Hill Jackson Johnson Jones King Lee Lewis Lopez Martin Martinez Miller Mitchell "
    "Moore Nelson Perez Phillips Roberts Robinson Rodriguez Scott Smith Taylor Thomas Thompson Turner "
    "Walker White Williams Wilson Wright Young".split()
)
NAME_PARTS = tuple(
    "Crafty Studio Mom Life Home Design Daily Style Blog Kitchen Travel Art Quotes Ink Money Wheels "
    "Beauty Decor Diaries Club Co Hub Works Nest Journal".split()
)

COUNTRIES = tuple(
    line.strip() for line in """
Afghanistan|Albania|Algeria|American Samoa|Andorra|Angola|Anguilla|Antarctica (the territory South of 60 deg S)
Antigua and Barbuda|Argentina|Armenia|Aruba|Australia|Austria|Azerbaijan|Bahamas|Bahrain|Bangladesh|Barbados
Belarus|Belgium|Belize|Benin|Bermuda|Bhutan|Bolivia|Bosnia and Herzegovina|Botswana|Bouvet Island (Bouvetoya)
Brazil|British Indian Ocean Territory (Chagos Archipelago)|British Virgin Islands|Brunei Darussalam|Bulgaria
Burkina Faso|Burundi|Cambodia|Cameroon|Canada|Cape Verde|Cayman Islands|Central African Republic|Chad|Chile
China|Christmas Island|Cocos (Keeling) Islands|Colombia|Comoros|Congo|Cook Islands|Costa Rica|Cote d'Ivoire
Croatia|Cuba|Cyprus|Czech Republic|Denmark|Djibouti|Dominica|Dominican Republic|Ecuador|Egypt|El Salvador
Equatorial Guinea|Eritrea|Estonia|Ethiopia|Faroe Islands|Falkland Islands (Malvinas)|Fiji|Finland|France
French Guiana|French Polynesia|French Southern Territories|Gabon|Gambia|Georgia|Germany|Ghana|Gibraltar|Greece
Greenland|Grenada|Guadeloupe|Guam|Guatemala|Guernsey|Guinea|Guinea-Bissau|Guyana|Haiti
Heard Island and McDonald Islands|Holy See (Vatican City State)|Honduras|Hong Kong|Hungary|Iceland|India
Indonesia|Iran|Iraq|Ireland|Isle of Man|Israel|Italy|Jamaica|Japan|Jersey|Jordan|Kazakhstan|Kenya|Kiribati
Korea|Kuwait|Kyrgyz Republic|Lao People's Democratic Republic|Latvia|Lebanon|Lesotho|Liberia
Libyan Arab Jamahiriya|Liechtenstein|Lithuania|Luxembourg|Macao|Macedonia|Madagascar|Malawi|Malaysia|Maldives
Mali|Malta|Marshall Islands|Martinique|Mauritania|Mauritius|Mayotte|Mexico|Micronesia|Moldova|Monaco|Mongolia
Montenegro|Montserrat|Morocco|Mozambique|Myanmar|Namibia|Nauru|Nepal|Netherlands|Netherlands Antilles
New Caledonia|New Zealand|Nicaragua|Niger|Nigeria|Niue|Norfolk Island|Northern Mariana Islands|Norway|Oman
Pakistan|Palau|Palestinian Territory|Panama|Papua New Guinea|Paraguay|Peru|Philippines|Pitcairn Islands|Poland
Portugal|Puerto Rico|Qatar|Reunion|Romania|Russian Federation|Rwanda|Saint Barthelemy|Saint Helena
Saint Kitts and Nevis|Saint Lucia|Saint Martin|Saint Pierre and Miquelon|Saint Vincent and the Grenadines
Samoa|San Marino|Sao Tome and Principe|Saudi Arabia|Senegal|Serbia|Seychelles|Sierra Leone|Singapore|Slovakia
Slovenia|Solomon Islands|Somalia|South Africa|South Georgia and the South Sandwich Islands|Spain|Sri Lanka
Sudan|Suriname|Svalbard & Jan Mayen Islands|Swaziland|Sweden|Switzerland|Syrian Arab Republic|Taiwan
Tajikistan|Tanzania|Thailand|Timor-Leste|Togo|Tokelau|Tonga|Trinidad and Tobago|Tunisia|Turkey|Turkmenistan
Turks and Caicos Islands|Tuvalu|Uganda|Ukraine|United Arab Emirates|United Kingdom|United States of America
United States Minor Outlying Islands|United States Virgin Islands|Uruguay|Uzbekistan|Vanuatu|Venezuela
Vietnam|Wallis and Futuna|Western Sahara|Yemen|Zambia|Zimbabwe|Saint Helena & Ascension
""".replace("\n", "|").split("|") if line.strip()
)


@dataclass(frozen=True)
class Poster:
    """What the real data repeats on every row of one poster."""

    name: str
    follower_count: str
    first_name: str
    last_name: str
    age: int
    date_joined: datetime
    latitude: float
    longitude: float
    country: str


def category_of(idx: int, rows: int) -> str:
    """The 13 categories sit in contiguous idx blocks of near-equal size, in alphabetical order."""
    return CATEGORIES[idx * len(CATEGORIES) // rows]


def _random_seconds(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds()) + 1))


def _rows_of(size: float) -> int:
    """How many rows a poster of size quantile `size` (0..1) has."""
    low, high = RUN_SPLITS
    return 1 + (size >= low) + (size >= high)


def _row_quantile(size: float) -> float:
    """The share of rows whose poster is smaller than one of size quantile `size`: posters with more rows
    weigh more, so that counts drawn at this quantile have FOLLOWER_QUANTILES per row."""
    low, high = RUN_SPLITS
    mean = low + 2 * (high - low) + 3 * (1 - high)
    return (min(size, low) + 2 * min(max(size - low, 0.0), high - low) + 3 * max(size - high, 0.0)) / mean


def follower_text(quantile: float) -> str:
    """The count at `quantile` of FOLLOWER_QUANTILES, written as the source writes it: 850, 13k, 2M."""
    for (q0, v0), (q1, v1) in zip(FOLLOWER_QUANTILES, FOLLOWER_QUANTILES[1:]):
        if quantile <= q1:
            value = v0 * (v1 / v0) ** ((quantile - q0) / (q1 - q0))
            break
    if value < 1_000:
        return str(int(value))
    if value < 1_000_000:
        return f"{min(int(value // 1_000), 999)}k"
    return f"{int(value // 1_000_000)}M"


def _follower_count(rng: random.Random) -> tuple[str, int]:
    """(the follower count text, the number of rows) of a new poster."""
    if rng.random() < FOLLOWER_ERROR:
        return USER_INFO_ERROR, rng.choice((1, 2, 3))
    size = rng.random()
    return follower_text(_row_quantile(size)), _rows_of(size)


def _poster_name(rng: random.Random, first: str, last: str) -> str:
    style = rng.random()
    if style < 0.4:
        name = f"{first} {last}"
    elif style < 0.6:
        name = f"{rng.choice(NAME_PARTS)} & {rng.choice(NAME_PARTS)}"
    elif style < 0.7:
        name = f"{first} | {rng.choice(NAME_PARTS)} {rng.choice(NAME_PARTS)}"
    else:
        name = f"{rng.choice(NAME_PARTS)} {rng.choice(NAME_PARTS)} by {first}"
    return name + " " if rng.random() < 0.1 else name


def make_poster(rng: random.Random, taken: dict[str, int]) -> tuple[Poster, int]:
    """One poster with a consistent identity and location, and its number of rows. Its name is not in
    `taken` (the names given so far, which it joins; see _unique_name): one poster name is one person."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    follower_count, rows = _follower_count(rng)
    name = USER_INFO_ERROR if follower_count == USER_INFO_ERROR else _unique_name(rng, first, last, taken)
    age = rng.randint(20, 24) if rng.random() < YOUNG_RATE else rng.randint(25, 60)
    if rng.random() < SOUTH_POLE_RATE:
        latitude = rng.uniform(-90.0, -80.0)
    else:
        latitude = rng.uniform(-80.0, 90.0)
    return Poster(
        name=name,
        follower_count=follower_count,
        first_name=first,
        last_name=last,
        age=age,
        date_joined=_random_seconds(rng, JOIN_START, JOIN_END),
        latitude=round(latitude, 6),
        longitude=round(rng.uniform(-180.0, 180.0), 6),
        country=rng.choice(COUNTRIES),
    ), rows


def _unique_name(rng: random.Random, first: str, last: str, taken: dict[str, int]) -> str:
    """A name not in `taken` (then added to it): up to five random draws, then the last draw numbered from 6
    ("Ann Lee 6", "Ann Lee 7", ...), as large batches run out of names. `taken` maps each name given to the
    next number for it, so numbering does not count up from 6 again every time."""
    name = _poster_name(rng, first, last)
    for _ in range(4):
        if name.strip() not in taken:
            break
        name = _poster_name(rng, first, last)
    if name.strip() in taken:
        base = name.strip()
        number = taken[base]
        while f"{base} {number}" in taken:
            number += 1
        taken[base] = number + 1
        name = f"{base} {number}"
    taken[name.strip()] = 6
    return name


def _sentence(rng: random.Random, words: tuple[str, ...], n: int) -> str:
    return " ".join(rng.choice(words) if rng.random() < 0.6 else rng.choice(FILLER) for _ in range(n))


def _title(rng: random.Random, words: tuple[str, ...]) -> str:
    roll = rng.random()
    if roll < UNTITLED_RATE:
        return UNTITLED
    if roll < UNTITLED_RATE + EMPTY_TEXT_RATE:
        return ""
    return _sentence(rng, words, rng.randint(3, 8)).title()


def _description(rng: random.Random, words: tuple[str, ...]) -> str:
    roll = rng.random()
    if roll < UNTITLED_RATE:
        return UNTITLED
    if roll < UNTITLED_RATE + EMPTY_TEXT_RATE:
        return ""
    parts = [_sentence(rng, words, rng.randint(4, 10)).capitalize()]
    if rng.random() < COMMA_RATE:
        parts.append(", " + _sentence(rng, words, rng.randint(3, 8)))
    if rng.random() < QUOTE_RATE:
        parts.append(f' "{_sentence(rng, words, 2)}"')
    if rng.random() < NEWLINE_RATE:
        parts.append("\n" + _sentence(rng, words, 4))
    parts.append(ELLIPSIS_NBSP if rng.random() < ELLIPSIS_RATE else ".")
    return "".join(parts)


def _tags(rng: random.Random, words: tuple[str, ...]) -> str:
    if rng.random() < NO_TAGS_RATE:
        return NO_TAGS
    return ",".join(rng.choice(words).capitalize() + " " + rng.choice(words) for _ in range(rng.randint(3, 8)))


def iter_rows(rows: int = DEFAULT_ROWS, seed: int = 0) -> Iterator[tuple[tuple, tuple, tuple]]:
    """Yield (pin, geo, user) tuples for idx 0..rows-1 in source column order (Python values); `seed` is the
    random seed (the same seed gives the same rows)."""
    if rows < 1:
        raise ValueError("rows must be a positive integer")
    rng = random.Random(seed)
    idx, names = 0, {}
    while idx < rows:
        poster, run = make_poster(rng, names)
        for _ in range(min(run, rows - idx)):
            yield _pin_row(rng, idx, rows, poster), _geo_row(rng, idx, poster), _user_row(idx, poster)
            idx += 1


def _pin_row(rng: random.Random, idx: int, rows: int, poster: Poster) -> tuple:
    category = category_of(idx, rows)
    words = WORDS[category]
    media = rng.random()
    if media < STORY:
        kind, description = STORY_FORMAT, NO_DESCRIPTION_STORY
    else:
        kind = "video" if media < STORY + VIDEO else "image"
        # NO_DESCRIPTION_RATE is a share of all rows, drawn among the non-story ones.
        if rng.random() < NO_DESCRIPTION_RATE / (1 - STORY):
            description = NO_DESCRIPTION
        else:
            description = _description(rng, words)
    error = poster.name == USER_INFO_ERROR
    if rng.random() < IMAGE_ERROR_RATE:
        image_src, downloaded = IMAGE_SRC_ERROR, 0
    else:
        image_src, downloaded = f"https://i.pinimg.com/originals/{rng.getrandbits(128):032x}.jpg", 1
    return (
        idx,
        uuid.UUID(int=rng.getrandbits(128), version=4),
        NO_TITLE if error else _title(rng, words),
        description,
        poster.name,
        poster.follower_count,
        _tags(rng, words),
        kind,
        image_src,
        downloaded,
        f"Local save in /data/{category}",
        category,
    )


def _geo_row(rng: random.Random, idx: int, poster: Poster) -> tuple:
    # Never before the poster joined: joins end where posts begin.
    timestamp = _random_seconds(rng, max(POST_START, poster.date_joined), POST_END)
    return (idx, timestamp, poster.latitude, poster.longitude, poster.country)


def _user_row(idx: int, poster: Poster) -> tuple:
    return (idx, poster.first_name, poster.last_name, poster.age, poster.date_joined)
