"""Word lists and name builders for the synthetic geography.

Everything here is pure data plus deterministic helpers: the callers pass their own numpy
generators, so names depend only on the seed.
"""

from __future__ import annotations

import numpy as np


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    """Word lists are kept as one readable string each."""
    return tuple(text.split(sep))


TOWN_PREFIXES = _words(
    "Ash Al Bar Barn Beck Bel Ber Black Brad Bram Brent Brid Brom Bur Cal Car Chel Ches Clay "
    "Cold Cran Crow Dal Dar Dun Ed Elm Fair Far Fel Fern Ford Gar Glen Gold Grim Hal Ham Har "
    "Hart Hat Haver Hay Hol Horn Hun Kel Ken Kil Kings Kirk Lang Lea Lin Long Lyd Mal Mar Mel "
    "Mid Mil Nes New Nor Oak Old Ot Pen Pick Pol Pres Ray Red Rich Rip Ros Rud Sal Sand Scar "
    "Sel Shaw Shel Ship Sil Stan Stain Stock Stone Sut Swan Tad Tam Thorn Tid Til Tow Up Wal "
    "War Wat Wel West Whit Wick Wil Win Wood Wor Wy Yar"
)
TOWN_SUFFIXES = _words(
    "by ton ham ford field ley bury borough wick worth thorpe stead minster mouth bridge caster "
    "chester combe dale don hurst ington ingham land low mere more port sey stow wood well "
    "holme gate den brook croft wold hall burn"
)
TOWN_MODIFIERS = (
    "Great {}",
    "Little {}",
    "Upper {}",
    "Lower {}",
    "{} Magna",
    "{} on Sea",
    "{} St Mary",
    "Market {}",
    "Kings {}",
    "{} Green",
    "{} Heath",
    "North {}",
    "South {}",
    "East {}",
    "West {}",
)
STREET_WORDS = _words(
    "Mill,Church,Station,Victoria,Albert,Queen,King,Park,Manor,Green,Oak,Elm,Ash,Beech,Birch,"
    "Cedar,Chestnut,Hawthorn,Holly,Maple,Willow,Rowan,Meadow,Orchard,Springfield,Westfield,"
    "Mount,Hill,Brook,River,Bridge,Castle,Abbey,Priory,Chapel,School,Farm,Grange,Hall,"
    "Windmill,Mount Pleasant,North,South,East,West,New,Old,Long,Broad,Back,Cross,Market,"
    "Garden,Rose,Lilac,Primrose,Heather,Clover,Fern,Lime,Poplar,Sycamore,Laurel,York,"
    "Lancaster,Windsor,Stanley,Wellington,Nelson,Trafalgar,Waterloo,Alexandra,Cambridge,"
    "Oxford,Princess,Prince,Duke,Salisbury,Grosvenor,Clarence,Regent,Milton,Shakespeare,"
    "Byron,Tennyson,Wordsworth,Chaucer,Highfield,Fairfield,Woodland,Lakeside,Valley,Moor,"
    "Heath,Common,Vicarage,Rectory,Quarry,Forge,Canal,Wharf,Ferry,Dock,Harbour,Beacon,Tower,"
    "Spring,Well,Pond,Fox,Badger,Swallow,Kingfisher,Heron,Lark,Nightingale,Sunny,Cherry,"
    "Apple,Pear,Plum,Hazel,Juniper,Larch,Pine,Alder,St John's,St Mary's,St Peter's,Bishop's",
    ",",
)
STREET_TYPES = _words(
    "Road Road Road Street Street Lane Lane Avenue Close Close Drive Way Crescent Gardens "
    "Grove Place Terrace Court Rise View Walk Mews Row Hill Square Green Park Vale Fields"
)
HOUSE_NAMES = _words(
    "The Old Rectory,Rose Cottage,The Old Vicarage,Orchard House,Ivy Cottage,The Cottage,"
    "Mill House,The Barn,Hillside,Woodlands,The Laurels,Fernlea,Holly Lodge,The Coach House,"
    "Meadow View,The Stables,Church Cottage,Brook House,The Willows,Greenacres,Applegarth,"
    "Yew Tree Cottage,The Old School House,Lilac Cottage,Springfield House,Keepers Cottage,"
    "The Granary,Old Forge,The Old Post Office,Sunnyside,The Bungalow,Stone Cottage,"
    "Pear Tree House,The Lodge,Honeysuckle Cottage,Beech House,Oak Lodge,Wisteria Cottage,"
    "The Croft,Tall Trees",
    ",",
)
BUILDING_TYPES = _words(
    "Court House Lodge Mansions Heights Point Place Apartments Buildings Tower Wharf Chambers"
)
SHOP_TYPES = _words(
    "Pharmacy,Stores,Bakery,Fish Bar,Hair Salon,News,Dental Surgery,Post Office,Cafe,"
    "Launderette,Butchers,Florist,Estate Agents,Takeaway,Opticians,Barbers,Wine Bar,Garage",
    ",",
)
WARD_SUFFIXES = (
    "",
    "",
    "",
    "north",
    "south",
    "east",
    "west",
    "central",
    "park",
    "village",
    "rural",
    "valley",
)


def base_place_names() -> np.ndarray:
    """Every prefix+suffix place name, e.g. "Ashby", "Kirkbridge" (fixed order)."""
    return np.array([p + s for p in TOWN_PREFIXES for s in TOWN_SUFFIXES], dtype=object)


def place_name_pool(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct place names: plain names first, then modified ones ("Little Ashby").

    Towns and councils share one pool so no two of them ever get the same name (and slug).
    """
    base = base_place_names()
    names = list(base[rng.permutation(base.size)])
    if count > len(names):
        mods = [m.format(b) for m in TOWN_MODIFIERS for b in base]
        order = rng.permutation(len(mods))
        names.extend(mods[i] for i in order[: count - len(names)])
    if count > len(names):
        raise ValueError(f"cannot make {count} distinct place names")
    return names[:count]


def street_names() -> np.ndarray:
    """All street names ("Mill Lane", "High Street", ...) as a fixed-order object array."""
    names = ["High Street"]
    names += [f"{w} {t}" for w in STREET_WORDS for t in dict.fromkeys(STREET_TYPES) if w != t]
    return np.array(names, dtype=object)


def street_type_weights() -> np.ndarray:
    """Sampling weights for ``street_names()`` so Roads and Streets are common, Mews rare."""
    counts = {t: STREET_TYPES.count(t) for t in dict.fromkeys(STREET_TYPES)}
    weights = [3.0]
    weights += [float(counts[t]) for w in STREET_WORDS for t in counts if w != t]
    arr = np.array(weights)
    return arr / arr.sum()


def building_names() -> np.ndarray:
    """Names of blocks of flats, e.g. "Rose Court", "Victoria House"."""
    words = [w for w in STREET_WORDS if "'" not in w]
    return np.array([f"{w} {t}" for w in words for t in BUILDING_TYPES], dtype=object)


def shop_names() -> np.ndarray:
    """Business names for high-street units, e.g. "Mill Pharmacy", "The Swan Inn"."""
    words = [w for w in STREET_WORDS if "'" not in w and " " not in w]
    shops = [f"{w} {t}" for w in words[::3] for t in SHOP_TYPES]
    pubs = [f"The {w} {t}" for w in words[1::4] for t in ("Inn", "Arms", "Tavern")]
    return np.array(shops + pubs, dtype=object)


def ward_slugs(rng: np.random.Generator, words: list[str], count: int) -> list[str]:
    """``count`` distinct ward slugs such as "kirkham-north" or "abbey-and-fernley".

    Slugs only use lower-case ascii letters, digits and single hyphens, as ballot ids need.
    """
    out: dict[str, None] = {}
    while len(out) < count:
        word = slugify_words(words[int(rng.integers(len(words)))])
        roll = rng.random()
        if roll < 0.12:
            other = slugify_words(words[int(rng.integers(len(words)))])
            slug = f"{word}-and-{other}" if other != word else word
        else:
            suffix = WARD_SUFFIXES[int(rng.integers(len(WARD_SUFFIXES)))]
            slug = f"{word}-{suffix}" if suffix else word
        out.setdefault(slug)
    return list(out)


def slugify_words(text: str) -> str:
    """Lower-case hyphenated slug of a name: "St Mary's Park" -> "st-marys-park"."""
    cleaned = "".join(c for c in text.lower() if c.isascii() and (c.isalnum() or c in " -"))
    return "-".join(cleaned.replace("-", " ").split())
