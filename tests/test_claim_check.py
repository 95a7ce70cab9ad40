"""Claim checks: each perturbation type is rejected and faithful paraphrases pass, German and English."""
from __future__ import annotations

import pytest

from app.answer import claim_check as cc
from app.answer.verification import Verifier
from app.citations import Source
from ingest.documents import Chunk


def problems(claim: str, span: str) -> list[str]:
    return cc.claim_problems(claim, span)


# ---------------------------------------------------------------- figures and units

WRONG_UNITS = [
    ("The installer sends the report within 30 weeks of commissioning.",
     "The installer sends the report within 30 days of commissioning."),
    ("Wechselt ein Ansprechpartner, ist die Partei binnen 14 Wochen zu informieren.",
     "Änderungen der Ansprechpartner sind der Partei innerhalb von 14 Tagen mitzuteilen."),
    ("The compressor is protected by a 16 kW type C circuit breaker.",
     "The compressor is protected by a 16 A type C circuit breaker."),
    ("At least 300 cm must be kept free behind the unit.", "Keep at least 300 mm free behind the unit."),
    ("Der Kältekreis enthält 1,35 Liter R290.", "The refrigerant circuit contains 1.35 kg of R290."),
    ("Für das Befreien eingeschlossener Personen gilt eine Frist von 30 Stunden.",
     "Befreiung eingeschlossener Personen aus einem Aufzug: 30 Minuten."),
    ("Nach Schätzung des NIS kommen jeden Monat etwa 2000 Soldaten ums Leben.",
     "Der Geheimdienst NIS schätzt, dass rund 2000 Soldaten bereits gefallen sind."),
    ("Spare parts are invoiced at the list price minus 8 euros.",
     "Ersatzteile werden zum Listenpreis abzüglich 8 % berechnet."),
]


@pytest.mark.parametrize(("claim", "span"), WRONG_UNITS)
def test_a_wrong_unit_is_rejected(claim: str, span: str) -> None:
    found = problems(claim, span)
    assert found and any(p.startswith(("unit", "figure")) for p in found), found


FAITHFUL_FIGURES = [
    ("Die feste Vertragslaufzeit beträgt drei Jahre und beginnt im April 2025.",
     "Der Vertrag beginnt am 1. April 2025 und hat eine feste Laufzeit von 36 Monaten."),
    ("Written enquiries are answered within 2 Werktagen.",
     "Written enquiries are answered within 2 working days."),
    ("Der Betriebsdruck soll zwischen 1,5 und 2,0 bar liegen.",
     "The operating water pressure is between 1.5 bar and 2.0 bar."),
    ("Putin and Kim sealed a strategic partnership in the summer of 2024.",
     "Dabei hatten Putin und Kim im Sommer 2024 eine strategische Partnerschaft besiegelt."),
    ("Ersatzteile sollen mindestens bis 2035 erhältlich bleiben.",
     "Spare parts will remain available until at least 2035."),
    ("Xi Jinping wird mit einem Alter von 72 Jahren angegeben.",
     "neben Putin und Xi Jinping (72) auftreten."),
    ("Die Jahrespauschale für die zwei Aufzüge liegt bei 6.840 Euro.",
     "Sie beträgt für beide Aufzüge zusammen 6.840,00 Euro netto."),
    ("Regular working hours run from 7 a.m. to 6 p.m.", "Als reguläre Arbeitszeit gilt 7:00 bis 18:00 Uhr."),
]


@pytest.mark.parametrize(("claim", "span"), FAITHFUL_FIGURES)
def test_faithful_figures_pass(claim: str, span: str) -> None:
    assert problems(claim, span) == []


def test_a_wrong_number_or_year_or_time_is_rejected() -> None:
    assert problems("The unit weighs 158 kg.", "The unit weighs 148 kg without water.")
    assert problems("Die Solaranlage ist seit 2020 in Betrieb.", "Die Solaranlage ist seit 2021 in Betrieb.")
    assert problems("Der Nachtbetrieb läuft von 02:00 bis 06:00 Uhr.", "Night mode runs from 22:00 to 06:00.")
    assert problems("2000 soldiers died.", "Seit 2000 sind Soldaten gefallen.")  # a year is no count


def test_a_duration_in_another_unit_must_be_the_same_duration() -> None:
    assert not cc.unit_problems("Die Frist beträgt zwei Wochen.", "Die Frist beträgt 14 Tage.")
    assert cc.unit_problems("Die Frist beträgt drei Wochen.", "Die Frist beträgt 3 Monate.")
    # 3 weeks are not 500 hours, however close the days: hours are not converted
    assert cc.unit_problems("alle 3 Wochen oder 500 Betriebsstunden",
                            "every 3 months or 500 operating hours")


def test_what_a_number_counts_must_match() -> None:
    span = "Darunter Millionen Artilleriegranaten und rund 15'000 Soldaten, die im Ukraine-Krieg kämpfen."
    assert cc.counted_problems("Es sind rund 15'000 Bataillone, die kämpfen.", span)
    assert not cc.counted_problems("Rund 15'000 Soldaten kämpfen im Krieg.", span)


# ---------------------------------------------------------------- polarity

FLIPS = [
    ("An official said that Russia appears to have compensated North Korea sufficiently.",
     "An official said that Russia does not appear to have compensated North Korea sufficiently."),
    ("Für Zusatzarbeiten über 800 Euro netto ist keine schriftliche Freigabe nötig.",
     "Über 800,00 Euro netto ist eine schriftliche Freigabe erforderlich."),
    ("The owner is allowed to switch the legionella programme off.",
     "The owner may move it to another weekday but must not switch it off."),
    ("Für seine Waffenlieferungen bekommt Pjöngjang von Moskau eine Menge zurück.",
     "Trotz umfangreicher Waffenlieferungen erhält Pjöngjang wenig Gegenleistungen von Moskau."),
    ("During transport the unit may be tilted by more than 45 degrees.",
     "Transport the unit upright; it may be tilted by no more than 45 degrees."),
    ("Während Moskau und Pjöngjang Stärke demonstrieren, wächst intern das Vertrauen.",
     "Während Moskau und Pjöngjang Stärke zeigen, bröckelt das Vertrauen hinter den Kulissen."),
    ("Die Lieferungen haben nachweislich einen Wert von 9,8 Milliarden Dollar erreicht.",
     "Die Lieferungen haben möglicherweise einen Wert von bis zu 9,8 Milliarden Dollar erreicht."),
    ("Not only Kim and his elite benefit.", "Only Kim and his elite benefit."),
    ("Liability for gross negligence is limited.", "Liability for gross negligence is unlimited."),
    ("Since the start of the year the South Korean won has lost value.",
     "Der nordkoreanische Won hat seit Jahresbeginn massiv an Wert verloren."),
]


@pytest.mark.parametrize(("claim", "span"), FLIPS)
def test_a_flipped_polarity_is_rejected(claim: str, span: str) -> None:
    assert cc.polarity_problems(claim, span), (claim, span)


SAME_POLARITY = [
    ("Dringend gebrauchte Zuflüsse ausländischer Devisen sind ebenfalls nicht erkennbar.",
     "Auch von dringend benötigten Devisenzuflüssen ist nichts zu sehen."),
    ("In material terms, North Korea seems to gain hardly anything from its support.",
     "Materiell scheint Nordkorea von seiner Unterstützung kaum zu profitieren."),
    ("Die Preise dürfen danach nicht öfter als einmal pro Vertragsjahr angepasst werden.",
     "Eine Preisanpassung ist danach höchstens einmal je Vertragsjahr zulässig."),
    ("A price increase is capped at 3.5% over the previous year.",
     "Die Erhöhung darf 3,5 % gegenüber dem Vorjahr nicht übersteigen."),
    ("According to the study, Moscow's return deliveries may include a few fighter jets.",
     "Die Gegenleistungen aus Moskau sind mager: Öl und vielleicht ein paar Kampfflugzeuge."),
    ("The heating system has a visual inspection in January.",
     "Zusätzlich findet im Januar eine Sichtprüfung statt."),
]


@pytest.mark.parametrize(("claim", "span"), SAME_POLARITY)
def test_the_same_polarity_passes(claim: str, span: str) -> None:
    assert cc.polarity_problems(claim, span) == []


# ---------------------------------------------------------------- entities

WRONG_ENTITIES = [
    ("The caretaker Jonas Albrecht may report faults.", "The caretaker Enrico Pape may report faults."),
    ("Enrico Pape darf Zusatzarbeiten bis 800 Euro netto freigeben.",
     "Zusatzarbeiten bis 800,00 Euro netto kann die Objektbetreuerin Dana Wolters freigeben."),
    ("Vertragsänderungen müssen schriftlich erfolgen, und Gerichtsstand ist Altmersdorf.",
     "Änderungen bedürfen der Schriftform. Gerichtsstand ist Hohenbrück."),
    ("This manual applies to the AeroTherm KX-12 heat pumps.",
     "This manual applies to the AeroTherm KX-9 heat pump."),
    ("Error code E11 means the sensor is faulty.", "E07: outdoor temperature sensor faulty."),
    ("The hotline is staffed on Saturday.", "The hotline is staffed Monday to Friday."),
    ("The backup heater is supplied with 400 V three-phase current.",
     "The compressor is supplied with 400 V three-phase current."),
]


@pytest.mark.parametrize(("claim", "span"), WRONG_ENTITIES)
def test_a_wrong_entity_is_rejected(claim: str, span: str) -> None:
    found = cc.entity_problems(claim, span) + cc.subject_problems(claim, span)
    assert found, (claim, span)


SAME_ENTITIES = [
    ("Das Handbuch gilt für KX-9-Außengeräte, die ab Januar 2024 hergestellt wurden.",
     "This manual applies to the Kestrel AeroTherm KX-9 outdoor heat pump manufactured from January 2024."),
    ("Hausmeister Pape darf Störungen melden.",
     "Der Hausmeister Enrico Pape ist berechtigt, Störungen zu melden."),
    ("Laut NIS ist Kim Jong Un zunehmend enttäuscht, weil Russland seine Verluste nicht ausgleicht.",
     "Kim Jong Un soll laut NIS zunehmend enttäuscht sein, dass Russland seine Opfer nicht kompensiert."),
    ("Die Notrufzentrale ist das ganze Jahr über Tag und Nacht erreichbar.",
     "Die Notrufzentrale ist an 365 Tagen im Jahr rund um die Uhr erreichbar."),
    ("Zwischen Geräterückseite und Wand sind 300 mm frei zu halten.",
     "Keep 300 mm free between the rear of the unit and the wall."),
    ("A study by the Friedrich Naumann Foundation finds that cooperation runs in one direction.",
     "Eine Studie der Friedrich-Naumann-Stiftung zeigt, dass die Zusammenarbeit eine Einbahnstrasse ist."),
]


@pytest.mark.parametrize(("claim", "span"), SAME_ENTITIES)
def test_the_same_entities_pass(claim: str, span: str) -> None:
    assert cc.entity_problems(claim, span) == []


def test_german_common_nouns_are_not_names_but_names_are() -> None:
    found = [e.text for e in cc.entities("Der Verdichter läuft mit 400 V, und Enrico Pape ist in Moskau.")]
    assert "Verdichter" not in found and "Enrico Pape" in found and "Moskau" in found


def test_a_cross_lingual_name_needs_the_bridge() -> None:
    class Bridge:
        threshold = 0.875

        def score(self, term: str, passage: str) -> float:
            return 0.9 if term == "Russia" and "Russland" in passage else 0.0

    claim, span = "Food was delivered by Russia.", "Lebensmittel lieferte Russland."
    assert cc.entity_problems(claim, span)
    assert not cc.entity_problems(claim, span, Bridge())


# ---------------------------------------------------------------- roles

SWAPPED = [
    ("Seit 2023 hat Russland laut der Analyse Waffen an Nordkorea geliefert.",
     "Laut der Analyse hat Nordkorea seit 2023 Waffen an Russland geliefert."),
    ("Cooperation runs in one direction, from Russland to Nordkorea.",
     "Die Zusammenarbeit ist eine Einbahnstrasse – und zwar von Nordkorea nach Russland."),
    ("Studienautorin Guseinova zufolge hat Russland Nordkorea militärisch unterstützt.",
     "Für Studienautorin Guseinova steckt dahinter Kalkül: «Nordkorea hat Russland militärisch unterstützt."),
    ("Ein Beamter erklärte, Nordkorea habe Russland nicht genügend entschädigt.",
     "Ein Beamter sagte: «Russland scheint Nordkorea nicht ausreichend entschädigt zu haben.»"),
]


@pytest.mark.parametrize(("claim", "span"), SWAPPED)
def test_swapped_roles_are_rejected(claim: str, span: str) -> None:
    assert cc.role_problems(claim, span), (claim, span)


def test_a_party_noun_that_swaps_from_giver_to_receiver_is_rejected() -> None:
    span = ("Die Auftragnehmerin unterhält eine Versicherung und weist diese jährlich bis zum "
            "31. Januar nach.")
    assert cc.role_problems("Die Auftraggeberin muss der Auftragnehmerin jährlich die Versicherung "
                            "nachweisen.", span)
    assert not cc.role_problems("Die Auftragnehmerin muss jährlich ihre Versicherung nachweisen.", span)


def test_an_age_belongs_to_the_name_before_it() -> None:
    span = "Kim kann neben Putin und Xi Jinping (72) auftreten."
    assert cc.unsupported_figures("Kim Jong Un wird mit einem Alter von 72 Jahren angegeben.", span)
    assert not cc.unsupported_figures("Xi Jinping wird mit einem Alter von 72 Jahren angegeben.", span)


SAME_ROLES = [
    ("Weapons were delivered to Russland by Nordkorea.", "Nordkorea delivered weapons to Russland."),
    ("Russland received weapons from Nordkorea.", "Nordkorea delivered weapons to Russland."),
    ("Studienautorin Guseinova zufolge hat Nordkorea Russland militärisch unterstützt.",
     "Für Studienautorin Guseinova steckt dahinter Kalkül: «Nordkorea hat Russland militärisch unterstützt."),
    ("Laut NIS ist Kim Jong Un enttäuscht, dass Russland seine Verluste nicht ausgleicht.",
     "Kim Jong Un soll laut NIS enttäuscht sein, dass Russland seine Opfer nicht kompensiert."),
]


@pytest.mark.parametrize(("claim", "span"), SAME_ROLES)
def test_the_same_roles_pass(claim: str, span: str) -> None:
    assert cc.role_problems(claim, span) == []


def test_a_pair_of_sentences_lends_context_not_figures() -> None:
    first = "- Aufzug A im Haus 14: Tragfähigkeit 630 kg."
    second = "- Aufzug B im Haus 18: Tragfähigkeit 1.000 kg."
    assert not cc.figures_in_one_sentence("Aufzug B im Haus 18 trägt 630 kg.", [first, second])
    assert cc.figures_in_one_sentence("Aufzug A trägt 630 kg; Aufzug B im Haus 18 trägt 1.000 kg.",
                                      [first, second])


# ---------------------------------------------------------------- the verifier


def verifier(embedder: object, text: str) -> Verifier:
    chunk = Chunk("c1", "doc.txt", 0, len(text), text)
    return Verifier(embedder, [Source(1, chunk, 1.0)], min_similarity=0.5)  # type: ignore[arg-type]


TEXT = ("Nordkorea hat seit 2023 Waffen im Wert von 5,6 Milliarden Dollar an Russland geliefert. "
        "Die Wartung erfolgt alle 12 Monate durch den Installateur. "
        "Der Eigentümer darf das Programm nicht abschalten.")


def test_the_verifier_shows_a_faithful_claim(fake_embedder: object) -> None:
    v = verifier(fake_embedder, TEXT)
    verdict = v.check("Nordkorea hat seit 2023 Waffen im Wert von 5,6 Milliarden Dollar an Russland "
                      "geliefert.")
    assert verdict.shown and verdict.citation is not None and verdict.citation.start == 0


@pytest.mark.parametrize(("claim", "reason"), [
    ("Russland hat seit 2023 Waffen im Wert von 5,6 Milliarden Dollar an Nordkorea geliefert.", "role"),
    ("Die Wartung erfolgt alle 12 Wochen durch den Installateur.", "unit"),
    ("Der Eigentümer darf das Programm abschalten.", "polarity"),
    ("Nordkorea hat seit 2023 Waffen im Wert von 5,6 Milliarden Dollar an China geliefert.", "entity"),
    ("Nordkorea hat seit 2021 Waffen im Wert von 5,6 Milliarden Dollar an Russland geliefert.", "figure"),
])
def test_the_verifier_rejects_with_a_reason(fake_embedder: object, claim: str, reason: str) -> None:
    verdict = verifier(fake_embedder, TEXT).check(claim)
    assert not verdict.shown and reason in verdict.problem, verdict.problem
