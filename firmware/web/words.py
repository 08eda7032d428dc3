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
        "en": "Listing sent to {destination} (signed record {seq}).",
        "fr": "Liste envoyée à {destination} (enregistrement signé {seq}).",
        "nl": "Lijst verstuurd naar {destination} (ondertekend record {seq}).",
    },
    "print_failed": {
        "en": "Not printed: {problem}",
        "fr": "Pas imprimé : {problem}",
        "nl": "Niet afgedrukt: {problem}",
    },
    "by": {"en": "by", "fr": "par", "nl": "door"},
}


def say(word: str, language: str, **values: object) -> str:
    text = WORDS[word].get(language) or WORDS[word]["en"]
    return text.format(**values) if values else text
