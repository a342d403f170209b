"""Fictional names as they occur in Belgian youth-welfare files: Flemish, Walloon and immigrant
family names with their particles (Van, De, Van den, El, Ben, Aït), apostrophes, accents,
hyphenated given names and double family names. Shared by the seed and the queries."""

GIVEN = (
    "Lucas Noah Louis Arthur Adam Mohamed Nathan Victor Jules Liam Hugo Rayan Elias Milan Ayoub Théo Gabriel "
    "Mathis Sacha Nolan Ethan Maxime Tom Thomas Simon Lars Wout Jasper Senne Warre Lowie Mats Finn Vince "
    "Youssef Ilyas Bilal Hamza Imran Amine Anas Yassine Ismaël Mehdi Karim Omar Emre Burak Yusuf Mert Kerem "
    "Emma Louise Olivia Nora Lina Alice Juliette Léa Camille Sarah Inès Yasmine Zoë Manon Chloé Lotte Fien "
    "Marie Lisa Elise Hanne Noor Ella Mila Jana Amber Lore Febe Axelle Océane Clémence Anaïs Maëlle Célia "
    "Salma Aya Imane Nour Hiba Rania Khadija Fatima Meryem Elif Zeynep Ecem Büşra Aleyna Amina Safae "
    "Jean-Baptiste Anne-Sophie Marie-Lou Pierre-Louis Lou-Anne Jean-Pierre Marie-Ève Louis-Philippe"
).split()

FAMILY = [
    *"Peeters Janssens Maes Jacobs Mertens Willems Claes Goossens Wouters Dubois Lambert Dupont Martin "
    "Leroy Lemaire Hermans Michiels Aerts Stevens Pauwels Smets Desmet Verbruggen Vermeulen Jansen Pieters "
    "Peters Lenaerts Hendrickx Cools Declercq Dewaele Dhondt Dumont Dupuis Renard Simon Laurent Lejeune "
    "Lefèvre Lefebvre Lemaître Mercier Masson François Gérard Lecomte Denis Leclercq Noël Petit Rousseau "
    "Verhoeven Vermeersch Vandenberghe Vandenbroucke Vanderlinden Vandamme Verstraete Vercammen Verheyen "
    "Bogaert Bogaerts Coppens Coenen Geerts Huysmans Jorissen Kuypers Leemans Mathijs Nijs Segers Thys "
    "Baert Beeckman Claeys Cornelis Daems Debruyne Deprez Devos Dierickx Engelen Francken Gielen Haesen "
    "Bouzid Haddad Amrani Benali Bakkali Chahid Ouali Ziani Tahiri Idrissi Alaoui Mansouri Belkacem "
    "Yilmaz Kaya Demir Şahin Çelik Yıldız Öztürk Aydın Arslan Doğan Kılıç Aslan Çetin Kara Koç Kurt "
    "Nowak Kowalski Wiśniewski Popescu Ionescu Horváth Novák Rossi Russo Ferrari Esposito Bianchi "
    "Diallo Traoré Koné Mbuyi Kabongo Tshibangu Ilunga Mukendi Kasongo Lukusa Mulumba Nkosi".split(),
    "Van Damme", "Van den Broeck", "Van der Linden", "Van de Velde", "Van Hoof", "Van Acker", "Van Dyck",
    "Van den Bossche", "Van Hecke", "Van Aken", "De Smet", "De Backer", "De Vos", "De Clercq", "De Wilde",
    "De Meyer", "De Cock", "De Groote", "Den Haese", "D'Hondt", "D'Haese", "Dell'Aria", "Le Grand", "La Rocca",
    "El Amrani", "El Idrissi", "El Ouali", "El Khatib", "El Mansouri", "Ben Saïd", "Ben Ali", "Ben Yahia",
    "Aït Taleb", "Aït Ouali", "Abou Zeid", "O'Neill", "Mac Lean", "Da Silva", "Dos Santos", "De Oliveira",
]
