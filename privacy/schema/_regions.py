"""Public groupings of geography values, for suggested hierarchies: countries by world region (the UN
geoscheme's continents, the Americas split into Northern America and Latin America and the Caribbean) and US
states by Census Bureau region. Names are matched in lower case with punctuation as spaces, so that
`United-States`, `united states` and `UNITED STATES` are one country; a few common spellings are included."""

from __future__ import annotations

import re

__all__ = ["COUNTRY_REGIONS", "US_STATE_REGIONS", "region_of"]


def _table(regions: dict[str, str]) -> dict[str, str]:
    """name -> region, from region -> comma-separated names."""
    return {name.strip(): region for region, names in regions.items() for name in names.split(",") if name.strip()}


COUNTRY_REGIONS = _table(
    {
        "Africa": "algeria, angola, benin, botswana, burkina faso, burundi, cameroon, cape verde, cabo verde, "
        "central african republic, chad, comoros, congo, democratic republic of the congo, dr congo, drc, djibouti, "
        "egypt, equatorial guinea, eritrea, eswatini, swaziland, ethiopia, gabon, gambia, ghana, guinea, "
        "guinea bissau, ivory coast, cote d ivoire, kenya, lesotho, liberia, libya, madagascar, malawi, mali, "
        "mauritania, mauritius, morocco, mozambique, namibia, niger, nigeria, rwanda, senegal, seychelles, "
        "sierra leone, somalia, south africa, south sudan, sudan, tanzania, togo, tunisia, uganda, zambia, zimbabwe",
        "Northern America": "united states, united states of america, usa, us, u s, u s a, america, canada, bermuda, "
        "greenland",
        "Latin America and the Caribbean": "mexico, guatemala, belize, honduras, el salvador, nicaragua, costa rica, "
        "panama, cuba, jamaica, haiti, dominican republic, puerto rico, trinidad and tobago, trinidad tobago, "
        "trinadad tobago, bahamas, barbados, grenada, saint lucia, st lucia, dominica, antigua and barbuda, "
        "saint kitts and nevis, saint vincent and the grenadines, colombia, columbia, venezuela, ecuador, peru, "
        "bolivia, brazil, chile, argentina, uruguay, paraguay, guyana, suriname",
        "Europe": "albania, andorra, austria, belarus, belgium, bosnia and herzegovina, bulgaria, croatia, cyprus, "
        "czech republic, czechia, denmark, estonia, finland, france, germany, greece, hungary, iceland, ireland, "
        "italy, kosovo, latvia, liechtenstein, lithuania, luxembourg, malta, moldova, monaco, montenegro, "
        "netherlands, the netherlands, holland, holand netherlands, north macedonia, macedonia, norway, poland, "
        "portugal, romania, russia, russian federation, san marino, serbia, slovakia, slovenia, spain, sweden, "
        "switzerland, ukraine, united kingdom, uk, great britain, britain, england, scotland, wales, "
        "northern ireland, yugoslavia",
        "Asia": "afghanistan, armenia, azerbaijan, bahrain, bangladesh, bhutan, brunei, cambodia, china, georgia, "
        "hong kong, hong, india, indonesia, iran, iraq, israel, japan, jordan, kazakhstan, kuwait, kyrgyzstan, "
        "laos, lebanon, malaysia, maldives, mongolia, myanmar, burma, nepal, north korea, oman, pakistan, "
        "palestine, philippines, qatar, saudi arabia, singapore, south korea, korea, sri lanka, syria, taiwan, "
        "tajikistan, thailand, timor leste, east timor, turkey, turkiye, turkmenistan, united arab emirates, uae, "
        "uzbekistan, vietnam, viet nam, yemen",
        "Oceania": "australia, new zealand, fiji, papua new guinea, samoa, tonga, vanuatu, solomon islands, kiribati, "
        "micronesia, palau, marshall islands, nauru, tuvalu, guam",
    }
)

_STATES = {
    "Northeast": "ct connecticut, me maine, ma massachusetts, nh new hampshire, ri rhode island, vt vermont, "
    "nj new jersey, ny new york, pa pennsylvania",
    "Midwest": "il illinois, in indiana, mi michigan, oh ohio, wi wisconsin, ia iowa, ks kansas, mn minnesota, "
    "mo missouri, ne nebraska, nd north dakota, sd south dakota",
    "South": "de delaware, fl florida, ga georgia, md maryland, nc north carolina, sc south carolina, va virginia, "
    "dc district of columbia, wv west virginia, al alabama, ky kentucky, ms mississippi, tn tennessee, "
    "ar arkansas, la louisiana, ok oklahoma, tx texas",
    "West": "az arizona, co colorado, id idaho, mt montana, nv nevada, nm new mexico, ut utah, wy wyoming, "
    "ak alaska, ca california, hi hawaii, or oregon, wa washington",
}
#: each state by its two-letter code and by its name
US_STATE_REGIONS = {
    form: region
    for region, entries in _STATES.items()
    for entry in entries.split(",")
    for form in (entry.split(maxsplit=1)[0], entry.split(maxsplit=1)[1])
}


def region_of(value: object, table: dict[str, str]) -> str | None:
    """The region of a value in `table`, matched in lower case with punctuation as spaces, or None."""
    key = " ".join(re.sub(r"[^a-z0-9]+", " ", str(value).lower()).split())
    return table.get(key)
