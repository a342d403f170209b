"""Search quality: a table of what front-end users type (accents dropped or added, typos, names
swapped or partial, particles, hyphens, a date of birth) and the file they must find in the top
three. Reports recall@1 and recall@3; requires recall@3 >= 95%."""

from __future__ import annotations

from helpers import actor, create_subject

# Fictional children, close to one another on purpose (same given or family names, spellings).
PEOPLE = {
    "celine": ("Céline", "Vandenberghe", "2011-03-14"),
    "marie": ("Marie", "Vandenberghe", "2010-06-02"),
    "celine2": ("Céline", "Vandenbroucke", "2012-01-20"),
    "youssef": ("Youssef", "El Amrani", "2009-09-09"),
    "yousra": ("Yousra", "El Amrani", "2011-11-11"),
    "youssef2": ("Youssef", "Amrani", "2010-02-02"),
    "lotte": ("Lotte", "Van den Broeck", "2012-05-05"),
    "lotte2": ("Lotte", "Verbruggen", "2011-07-07"),
    "annesophie": ("Anne-Sophie", "De Smet-Peeters", "2010-08-08"),
    "sophie": ("Sophie", "De Smet", "2009-12-12"),
    "jeanbaptiste": ("Jean-Baptiste", "Dupont", "2011-04-04"),
    "baptiste": ("Baptiste", "Dupond", "2012-06-06"),
    "zoe": ("Zoë", "Janssens", "2010-10-10"),
    "zoe2": ("Zoé", "Jansen", "2011-10-10"),
    "noah": ("Noah", "Maes", "2012-02-02"),
    "nora": ("Nora", "Maes", "2010-03-03"),
    "mohamed": ("Mohamed", "Ben Saïd", "2009-05-05"),
    "mohammed": ("Mohammed", "Bensaid", "2011-05-05"),
    "lea": ("Léa", "Lefèvre", "2011-08-08"),
    "lea2": ("Lea", "Lefebvre", "2012-08-08"),
    "arthur": ("Arthur", "Van Damme", "2010-01-15"),
    "ayoub": ("Ayoub", "Aït Taleb", "2011-01-15"),
    "chloe": ("Chloé", "D'Hondt", "2012-03-03"),
    "manon": ("Manon", "Dewaele", "2011-03-03"),
    "rayan": ("Rayan", "Ouali", "2010-12-01"),
    "hugo": ("Hugo", "Claes", "2011-12-01"),
    "ines": ("Inès", "Goossens", "2010-04-22"),
    "elif": ("Elif", "Yilmaz", "2011-09-30"),
    "milan": ("Milan", "Peeters", "2009-07-07"),
    "victor": ("Victor", "Peeters", "2010-07-07"),
    "juliette": ("Juliette", "Lambert", "2012-09-09"),
    "camille": ("Camille", "Lambert", "2010-09-09"),
    "adam1": ("Adam", "Willems", "2010-01-01"),
    "adam2": ("Adam", "Willems", "2011-02-02"),
    "sarah1": ("Sarah", "Mertens", "2009-04-04"),
    "sarah2": ("Sara", "Mertens", "2012-04-04"),
    "francois": ("François", "Lemaître", "2010-11-23"),
    "oceane": ("Océane", "Van der Linden", "2011-06-30"),
    "kevin": ("Kevin", "O'Neill", "2010-02-14"),
    "amina": ("Amina", "Bouzid-Haddad", "2012-12-12"),
}

# (what is typed, date of birth or None, whom it must find)
CASES = [
    ("celine vandenberge", None, "celine"),                 # one typo, accent dropped
    ("Céline Vandenberghe", None, "celine"),                # exact
    ("vandenberghe celine", None, "celine"),                # swapped order
    ("CELINE VANDENBERGHE", None, "celine"),                # capitals
    ("celin vandenbergh", None, "celine"),                  # two typos
    ("céline vandenberg", None, "celine"),                  # partial family name
    ("marie vandenberghe", None, "marie"),
    ("vandenberghe", "2010-06-02", "marie"),                # family name alone, narrowed by birth
    ("celine vandenbroucke", None, "celine2"),
    ("el amrani youssef", None, "youssef"),                 # particle, swapped
    ("youssef el amrani", None, "youssef"),
    ("youssef elamrani", None, "youssef"),                  # particle glued
    ("yousra el amrani", None, "yousra"),
    ("yousra elamrani", None, "yousra"),
    ("youssef amrani", None, "youssef2"),
    ("lotte van den broeck", None, "lotte"),
    ("lotte vandenbroeck", None, "lotte"),                  # particles glued
    ("van den broek lotte", None, "lotte"),                 # swapped, one typo
    ("lotte verbrugen", None, "lotte2"),
    ("anne-sophie de smet-peeters", None, "annesophie"),    # hyphenated given and double family name
    ("anne sophie desmet", None, "annesophie"),             # hyphens dropped, particle glued
    ("de smet-peeters", None, "annesophie"),                # double family name alone
    ("smet peeters anne", None, "annesophie"),              # parts, swapped
    ("sophie de smet", None, "sophie"),
    ("jean-baptiste dupont", None, "jeanbaptiste"),
    ("jean baptiste dupont", None, "jeanbaptiste"),
    ("baptiste dupond", None, "baptiste"),
    ("zoe janssens", None, "zoe"),                          # diaeresis dropped
    ("zoé jansens", None, "zoe"),                           # wrong accent added, one typo
    ("zoe jansen", None, "zoe2"),
    ("noah maes", None, "noah"),                            # short names
    ("nora maes", None, "nora"),
    ("mohamed ben said", None, "mohamed"),
    ("mohammed bensaid", None, "mohammed"),
    ("mohamed bensaïd", None, "mohamed"),                   # particle glued, accent added
    ("lea lefevre", None, "lea"),
    ("léa lefebvre", None, "lea2"),
    ("arthur vandamme", None, "arthur"),
    ("ayoub ait taleb", None, "ayoub"),
    ("chloe dhondt", None, "chloe"),                        # apostrophe dropped
    ("chloé d'hondt", None, "chloe"),
    ("manon dewale", None, "manon"),
    ("dewaele", None, "manon"),                             # family name alone
    ("goossens", None, "ines"),
    ("ines goosens", None, "ines"),
    ("elif yılmaz", None, "elif"),                          # dotless i typed
    ("milan peters", None, "milan"),
    ("victor peeters", None, "victor"),
    ("juliette lambert", None, "juliette"),
    ("lambert camille", None, "camille"),
    ("adam willems", "2011-02-02", "adam2"),                # namesakes told apart by birth
    ("adam willems", "2010-01-01", "adam1"),
    ("sarah mertens", None, "sarah1"),
    ("sara mertens", "2012-04-04", "sarah2"),
    ("selin vandenberghe", "2011-03-14", "celine"),         # a typo spoiling a short word, with the birth date
    ("hygo claes", "2011-12-01", "hugo"),
    ("francois lemaitre", None, "francois"),                # cedilla and circumflex dropped
    ("françois lemaître", None, "francois"),
    ("oceane van der linden", None, "oceane"),
    ("océane vanderlinden", None, "oceane"),
    ("kevin oneill", None, "kevin"),
    ("amina bouzid haddad", None, "amina"),
    ("amina haddad", None, "amina"),                        # second part of a double name
    ("bouzid", None, "amina"),
]

SEARCH = """
query($text: String!, $dateOfBirth: Date) {
  searchSubjects(text: $text, dateOfBirth: $dateOfBirth, first: 3) { edges { score node { id } } }
}"""


async def test_search_quality_table(world):
    # given the fictional children, in the caseworker's unit
    ids = {}
    for key, (given, family, born) in PEOPLE.items():
        subject = await create_subject(world, givenName=given, familyName=family, dateOfBirth=born)
        ids[subject["id"]] = key
    casey = actor(world, "caseworker")
    assert len(CASES) >= 40
    # when each case is searched
    first, top3, misses = 0, 0, []
    for text, born, expected in CASES:
        data = await casey.ok(SEARCH, {"text": text, "dateOfBirth": born})
        ranked = [ids[e["node"]["id"]] for e in data["searchSubjects"]["edges"]]
        first += ranked[:1] == [expected]
        top3 += expected in ranked
        if expected not in ranked:
            misses.append((text, born, expected, ranked))
    recall_1, recall_3 = first / len(CASES), top3 / len(CASES)
    print(f"\nsearch quality: {len(CASES)} cases, recall@1 {recall_1:.1%}, recall@3 {recall_3:.1%}; misses: {misses}")
    # then nearly every expected file is in the top three
    assert recall_3 >= 0.95, misses
