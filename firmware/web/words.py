"""The page's own words in French, Dutch and English. What the procedure says to do is not here: the state line
and the steps come from paper_fallback/guidance.py, the same sentences `sitegate outage` prints."""

from __future__ import annotations

LANGUAGES = ("fr", "nl", "en")

WORDS: dict[str, dict[str, str]] = {
    "gate": {"en": "Gate", "fr": "Portique", "nl": "Toegangspoort"},
    "sign_in": {"en": "Sign in", "fr": "Se connecter", "nl": "Aanmelden"},
    "pin": {"en": "Your PIN", "fr": "Votre code PIN", "nl": "Uw pincode"},
    "wrong_pin": {"en": "Wrong PIN.", "fr": "Code PIN incorrect.", "nl": "Verkeerde pincode."},
    "wait": {
        "en": "Too many wrong PINs: try again in {seconds} s.",
        "fr": "Trop de codes PIN incorrects : réessayez dans {seconds} s.",
        "nl": "Te veel verkeerde pincodes: probeer opnieuw over {seconds} s.",
    },
    "signed_in": {"en": "Signed in: {name}", "fr": "Connecté : {name}", "nl": "Aangemeld: {name}"},
    "sign_out": {"en": "Sign out", "fr": "Se déconnecter", "nl": "Afmelden"},
    "state": {"en": "State", "fr": "État", "nl": "Toestand"},
    "evidence": {"en": "Evidence (signed)", "fr": "Preuves (signées)", "nl": "Bewijs (ondertekend)"},
    "failed": {"en": "FAILED", "fr": "ÉCHEC", "nl": "MISLUKT"},
    "ok": {"en": "ok", "fr": "ok", "nl": "ok"},
    "on_site": {"en": "On site now", "fr": "Sur le chantier maintenant", "nl": "Nu op de werf"},
    "on_site_count": {"en": "{count} on site", "fr": "{count} sur le chantier", "nl": "{count} op de werf"},
    "nobody": {"en": "Nobody on site.", "fr": "Personne sur le chantier.", "nl": "Niemand op de werf."},
    "print_page": {"en": "Print this list", "fr": "Imprimer cette liste", "nl": "Deze lijst afdrukken"},
    "today": {"en": "Today", "fr": "Aujourd'hui", "nl": "Vandaag"},
    "registrations": {"en": "Today's registrations", "fr": "Enregistrements du jour", "nl": "Registraties van vandaag"},
    "no_registrations": {
        "en": "No registration today.",
        "fr": "Aucun enregistrement aujourd'hui.",
        "nl": "Geen registratie vandaag.",
    },
    "remarks": {"en": "Remarks to act on", "fr": "Remarques à traiter", "nl": "Op te volgen opmerkingen"},
    "no_remarks": {
        "en": "No remark needs action.",
        "fr": "Aucune remarque à traiter.",
        "nl": "Geen opmerking op te volgen.",
    },
    "report_by": {"en": "report by", "fr": "à signaler avant le", "nl": "te melden vóór"},
    "refused": {"en": "refused", "fr": "refusé", "nl": "geweigerd"},
    "refused_registration": {
        "en": "The service refused this registration: it was not made.",
        "fr": "Le service a refusé cet enregistrement : il n'a pas été fait.",
        "nl": "De dienst weigerde deze registratie: ze werd niet gedaan.",
    },
    "remark_unknown": {"en": "Remark of the service.", "fr": "Remarque du service.", "nl": "Opmerking van de dienst."},
    "name": {"en": "Name", "fr": "Nom", "nl": "Naam"},
    "employer": {"en": "Employer", "fr": "Employeur", "nl": "Werkgever"},
    "since": {"en": "Since", "fr": "Depuis", "nl": "Sinds"},
    "at_gate": {"en": "Gate", "fr": "Portique", "nl": "Poort"},
    "time": {"en": "Time", "fr": "Heure", "nl": "Uur"},
    "direction": {"en": "In/out", "fr": "Entrée/sortie", "nl": "In/uit"},
    "reference": {
        "en": "Contact centre reference number",
        "fr": "Numéro de référence du centre de contact",
        "nl": "Referentienummer van het contactcenter",
    },
    "reference_now": {"en": "Reference of today", "fr": "Référence du jour", "nl": "Referentie van vandaag"},
    "employer_only": {
        "en": "Only for one employer (KBO/BCE), if the employers called separately",
        "fr": "Pour un seul employeur (BCE), si les employeurs ont appelé séparément",
        "nl": "Enkel voor één werkgever (KBO), als de werkgevers apart belden",
    },
    "record": {"en": "Record the reference", "fr": "Enregistrer la référence", "nl": "Referentie vastleggen"},
    "recorded": {
        "en": "Reference {reference} recorded (signed record {seq}).",
        "fr": "Référence {reference} enregistrée (enregistrement signé {seq}).",
        "nl": "Referentie {reference} vastgelegd (ondertekend record {seq}).",
    },
    "empty_reference": {
        "en": "Write the reference number first.",
        "fr": "Écrivez d'abord le numéro de référence.",
        "nl": "Vul eerst het referentienummer in.",
    },
    "listing": {
        "en": "Paper attendance listing",
        "fr": "Liste de présence papier",
        "nl": "Papieren aanwezigheidslijst",
    },
    "download": {"en": "Download the PDF", "fr": "Télécharger le PDF", "nl": "De pdf downloaden"},
    "to_printer": {"en": "Send to the printer", "fr": "Envoyer à l'imprimante", "nl": "Naar de printer sturen"},
    "printed": {
        "en": "Listing sent to the printer (signed record {seq}).",
        "fr": "Liste envoyée à l'imprimante (enregistrement signé {seq}).",
        "nl": "Lijst naar de printer gestuurd (ondertekend record {seq}).",
    },
    "paper": {
        "en": "In an outage: reference number and paper listing",
        "fr": "En cas de panne : numéro de référence et liste papier",
        "nl": "Bij een storing: referentienummer en papieren lijst",
    },
    "language": {"en": "Language", "fr": "Langue", "nl": "Taal"},
    "pages": {"en": "Pages", "fr": "Pages", "nl": "Pagina's"},
    "steps": {"en": "What to do", "fr": "Que faire", "nl": "Wat te doen"},
    "kept_for_technician": {
        "en": "Every detail is kept, signed, for the technician and the inspection.",
        "fr": "Chaque détail est gardé, signé, pour le technicien et l'inspection.",
        "nl": "Elk detail wordt ondertekend bewaard voor de technicus en de inspectie.",
    },
    # The errors a button can meet, in words: the technical text goes to the page's journal, not to the foreman.
    "gate_unavailable": {
        "en": "The gate's daemon does not answer: the gate is stopped or restarting. Try again in a minute; else "
        "call the technician.",
        "fr": "Le programme du portique ne répond pas : le portique est arrêté ou redémarre. Réessayez dans une "
        "minute ; sinon, appelez le technicien.",
        "nl": "Het programma van de toegangspoort antwoordt niet: de poort is gestopt of start opnieuw. Probeer "
        "opnieuw over een minuut; anders, bel de technicus.",
    },
    "print_failed": {
        "en": "Not printed: the printer did not take the listing. Check its paper, cable and power, or download "
        "the PDF.",
        "fr": "Pas imprimé : l'imprimante n'a pas pris la liste. Vérifiez son papier, son câble et son alimentation, "
        "ou téléchargez le PDF.",
        "nl": "Niet afgedrukt: de printer nam de lijst niet aan. Controleer papier, kabel en stroom, of download de "
        "PDF.",
    },
    "action_failed": {
        "en": "The gate refused it: call the technician (the gate's journal says why).",
        "fr": "Le portique a refusé : appelez le technicien (le journal du portique dit pourquoi).",
        "nl": "De toegangspoort weigerde: bel de technicus (het logboek van de poort zegt waarom).",
    },
    "bad_reference": {
        "en": "A reference number is 1 to 64 printable characters: type it as the contact centre gave it (letters, "
        "digits, dashes).",
        "fr": "Un numéro de référence compte 1 à 64 caractères imprimables : tapez-le comme le centre de contact l'a "
        "donné (lettres, chiffres, tirets).",
        "nl": "Een referentienummer telt 1 tot 64 afdrukbare tekens: typ het zoals het contactcenter het gaf "
        "(letters, cijfers, streepjes).",
    },
    "bad_employer": {
        "en": "Not a valid enterprise number (KBO/BCE): 10 digits, as on the employer's papers.",
        "fr": "Numéro d'entreprise (BCE) non valable : 10 chiffres, comme sur les documents de l'employeur.",
        "nl": "Geen geldig ondernemingsnummer (KBO): 10 cijfers, zoals op de papieren van de werkgever.",
    },
    # The colour band's word: a state read from afar, not only a tint.
    "level:ok": {"en": "WORKING", "fr": "EN SERVICE", "nl": "IN WERKING"},
    "level:waiting": {"en": "WORKING, SENDING", "fr": "EN SERVICE, ENVOI", "nl": "IN WERKING, VERZENDING"},
    "level:suspected": {"en": "CHECKING", "fr": "VÉRIFICATION", "nl": "CONTROLE"},
    "level:outage": {"en": "OUTAGE: EXEMPT", "fr": "PANNE : DISPENSE", "nl": "STORING: VRIJSTELLING"},
    "level:fault": {"en": "ACT NOW", "fr": "AGIR MAINTENANT", "nl": "NU HANDELEN"},
    "level:down": {"en": "GATE STOPPED", "fr": "PORTIQUE ARRÊTÉ", "nl": "POORT GESTOPT"},
    "direction:IN": {"en": "IN", "fr": "ENTRÉE", "nl": "IN"},
    "direction:OUT": {"en": "OUT", "fr": "SORTIE", "nl": "UIT"},
    "direction:PRESENCE": {"en": "PRESENT", "fr": "PRÉSENT", "nl": "AANWEZIG"},
    # The signed evidence, named for a foreman (the technician reads the raw probes with `sitegate outage --json`).
    "event:suspected": {"en": "failure seen", "fr": "échec constaté", "nl": "fout vastgesteld"},
    "event:opened": {"en": "outage opened", "fr": "panne ouverte", "nl": "storing geopend"},
    "event:never_connected": {"en": "never connected", "fr": "jamais connecté", "nl": "nooit verbonden"},
    "event:reclassified": {"en": "cause changed", "fr": "cause modifiée", "nl": "oorzaak gewijzigd"},
    "event:evidence": {"en": "checks repeated", "fr": "vérifications répétées", "nl": "controles herhaald"},
    "event:other": {"en": "record", "fr": "enregistrement", "nl": "record"},
    "probe:own": {"en": "the gate itself", "fr": "le portique lui-même", "nl": "de toegangspoort zelf"},
    "probe:gateway": {"en": "local network (router)", "fr": "réseau local (routeur)", "nl": "lokaal netwerk (router)"},
    "probe:dns": {"en": "the service's name", "fr": "nom du service", "nl": "naam van de dienst"},
    "probe:service_connect": {
        "en": "connection to the service",
        "fr": "connexion au service",
        "nl": "verbinding met de dienst",
    },
    "probe:service_tls": {
        "en": "secure connection to the service",
        "fr": "connexion sécurisée au service",
        "nl": "beveiligde verbinding met de dienst",
    },
    "probe:service_answer": {"en": "the service's answer", "fr": "réponse du service", "nl": "antwoord van de dienst"},
    "probe:reference": {
        "en": "internet (independent site)",
        "fr": "internet (site indépendant)",
        "nl": "internet (onafhankelijke site)",
    },
    "probe:other": {"en": "another check", "fr": "autre vérification", "nl": "andere controle"},
    "symptom:no_route": {"en": "no network", "fr": "pas de réseau", "nl": "geen netwerk"},
    "symptom:dns_failed": {"en": "name lookup fails", "fr": "recherche de nom en échec", "nl": "naam opzoeken mislukt"},
    "symptom:name_unknown": {"en": "name unknown", "fr": "nom inconnu", "nl": "naam onbekend"},
    "symptom:no_connection": {"en": "no connection", "fr": "pas de connexion", "nl": "geen verbinding"},
    "symptom:connection_refused": {"en": "connection refused", "fr": "connexion refusée", "nl": "verbinding geweigerd"},
    "symptom:tls_untrusted": {
        "en": "certificate not trusted",
        "fr": "certificat non reconnu",
        "nl": "certificaat niet vertrouwd",
    },
    "symptom:tls_failed": {
        "en": "secure connection broken",
        "fr": "connexion sécurisée rompue",
        "nl": "beveiligde verbinding verbroken",
    },
    "symptom:html_page": {
        "en": "a web page answered instead",
        "fr": "une page web a répondu à sa place",
        "nl": "een webpagina antwoordde in de plaats",
    },
    "symptom:service_error": {"en": "service error", "fr": "erreur du service", "nl": "fout van de dienst"},
    "symptom:no_answer": {"en": "no answer in time", "fr": "pas de réponse à temps", "nl": "geen antwoord op tijd"},
    "symptom:off_contract": {"en": "unexpected answer", "fr": "réponse inattendue", "nl": "onverwacht antwoord"},
    "symptom:credentials": {
        "en": "the gate's access refused",
        "fr": "accès du portique refusé",
        "nl": "toegang van de poort geweigerd",
    },
    "symptom:configuration": {
        "en": "the gate's settings",
        "fr": "réglages du portique",
        "nl": "instellingen van de poort",
    },
    "symptom:device_fault": {"en": "the gate's hardware", "fr": "matériel du portique", "nl": "hardware van de poort"},
    "symptom:other": {"en": "failed", "fr": "échec", "nl": "mislukt"},
    "by": {"en": "by", "fr": "par", "nl": "door"},
    "whole_site": {"en": "Whole site", "fr": "Tout le chantier", "nl": "Hele werf"},
    "colon": {"en": ": ", "fr": " : ", "nl": ": "},  # French sets a space before the colon
}


def say(word: str, language: str, **values: object) -> str:
    text = WORDS[word].get(language) or WORDS[word]["en"]
    return text.format(**values) if values else text


def named(kind: str, value: str | None, language: str) -> str:
    """A value the log stores (an event, a probe, a symptom, a direction) in words; one not in the tables gets the
    kind's general word, never the stored code."""
    word = f"{kind}:{value}"
    return say(word if word in WORDS else f"{kind}:other", language)


# What to do about a refused registration, or a remark the translated table (data/remarks_translated.csv) does
# not cover, in the page's words (the remarks themselves: sitegate.service.remarks).
_ACTIONS = {
    "refused": {
        "en": "check the worker's data and register again through another channel",
        "fr": "Vérifiez les données du travailleur et enregistrez-le à nouveau par un autre canal.",
        "nl": "Ga de gegevens van de werknemer na en registreer opnieuw via een ander kanaal.",
    },
    "other": {
        "en": "Check with the technician what to do.",
        "fr": "Voyez avec le technicien ce qu'il faut faire.",
        "nl": "Bekijk met de technicus wat er moet gebeuren.",
    },
}


def fallback_action(refused: bool, language: str) -> str:
    return _ACTIONS["refused" if refused else "other"][language]
