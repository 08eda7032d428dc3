"""What the foreman must do now, in the official procedure's words, in French, Dutch and English.

Written for a foreman with a phone, not a shell: no command appears here (the technician's commands are in
TECHNICIAN, shown by `sitegate outage` in a section of its own). The steps follow ciaw/seeds/: for a fault on our
side, the provider first, then another channel (online registration, the smartphone app), then the contact
centre (02 511 51 51; in opening hours 2 for French, 5 "Others", 6 for an agent; outside them, the contact form)
for a reference number, then the paper listing. The contact centre's menu is quoted as the procedure gives it
(its French menu); we do not invent the digits of the other languages.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sitegate.queue.failures import Cause


class OutageState(StrEnum):
    """An outage episode's state: as the journal keeps it (OK: no episode open) and as the signed records rebuild
    it, ended ones included. Stored and shown: never rename."""

    OK = "ok"
    SUSPECTED = "suspected"
    OPEN = "open"
    NEVER_CONNECTED = "never_connected"
    CLEARED = "cleared"  # a suspicion that ended within the grace period
    CLOSED = "closed"  # an outage that ended
    CONNECTED = "connected"  # a gate that had never connected delivered at last
    POWER_LOSS = "power_loss"


class Operation(StrEnum):
    """What every screen names beside an episode: the gate down (the daemon not running: nothing is recorded at the
    gate), working, or working with registrations waiting to be sent."""

    DOWN = "gate_down"
    WORKING = "working"
    WAITING = "waiting"


CONTACT_NUMBER, CONTACT_TEL = "02 511 51 51", "tel:+3225115151"  # the contact centre, as written and as dialled

# Each step: the action first (what a foreman reads on the run), then the detail.
_CONTACT = {
    "en": (
        "call the contact centre on 02 511 51 51 if no channel works: you receive a reference number",
        "in opening hours: press 2 for French, 5 for \u201cOthers\u201d, 6 for an agent; outside them, use the "
        "contact centre's contact form on socialsecurity.be",
    ),
    "fr": (
        "appelez le centre de contact au 02 511 51 51 si aucun canal ne fonctionne : vous recevez un num\u00e9ro "
        "de r\u00e9f\u00e9rence",
        "pendant les heures d'ouverture : tapez 2 pour le fran\u00e7ais, 5 pour \u00ab Autres \u00bb, 6 pour un "
        "agent ; en dehors, utilisez le formulaire de contact du centre de contact sur socialsecurity.be",
    ),
    "nl": (
        "bel het contactcenter op 02 511 51 51 als geen enkel kanaal werkt: u krijgt een referentienummer",
        "tijdens de openingsuren, volgens het menu van de offici\u00eble procedure: 2 voor Frans, 5 voor "
        "\u201cAndere\u201d, 6 voor een medewerker; daarbuiten, gebruik het contactformulier van het "
        "contactcenter op socialsecurity.be",
    ),
}

_LISTING = {
    "en": (
        "enter the reference number on the gate's page (or give it to the technician) and print the paper "
        "attendance listing",
        "it carries the reference, the works-declaration number, the date and every worker's number and name; add "
        "by hand anyone not on it. Keep it: it is your proof.",
    ),
    "fr": (
        "saisissez le num\u00e9ro de r\u00e9f\u00e9rence sur la page du portique (ou donnez-le au technicien) et "
        "imprimez la liste de pr\u00e9sence papier",
        "elle porte la r\u00e9f\u00e9rence, le num\u00e9ro de d\u00e9claration de travaux, la date et le "
        "num\u00e9ro et le nom de chaque travailleur ; ajoutez \u00e0 la main toute personne absente de la liste. "
        "Conservez-la : c'est votre preuve.",
    ),
    "nl": (
        "vul het referentienummer in op de pagina van de toegangspoort (of geef het aan de technicus) en druk de "
        "papieren aanwezigheidslijst af",
        "ze vermeldt de referentie, het nummer van de werkaangifte, de datum en het nummer en de naam van elke "
        "werknemer; vul met de hand aan wie er niet op staat. Bewaar ze: ze is uw bewijs.",
    ),
}

_OTHER_CHANNEL = {
    "en": ("register the workers through another channel", "online registration or the smartphone app"),
    "fr": ("faites l'enregistrement par un autre canal", "l'enregistrement en ligne ou l'application smartphone"),
    "nl": ("registreer de werknemers via een ander kanaal", "de online registratie of de smartphone-app"),
}

# A gate with a fallback channel tried it itself before the outage opened (the procedure's "another channel").
_OTHER_TRIED = {
    "en": "the gate already tried the other channel ({channel}) itself: it does not work either",
    "fr": "le portique a d\u00e9j\u00e0 essay\u00e9 lui-m\u00eame l'autre canal ({channel}) : il ne fonctionne "
    "pas non plus",
    "nl": "de toegangspoort heeft zelf al het andere kanaal ({channel}) geprobeerd: het werkt ook niet",
}
_OTHER_TRIED_THEN = {
    "en": (
        "if you can, register the workers online or with the smartphone app",
        "both channels are in the signed evidence of the unavailability",
    ),
    "fr": (
        "si vous le pouvez, faites l'enregistrement en ligne ou avec l'application smartphone",
        "les deux canaux figurent dans la preuve sign\u00e9e de l'indisponibilit\u00e9",
    ),
    "nl": (
        "registreer de werknemers zo mogelijk online of met de smartphone-app",
        "beide kanalen staan in het ondertekende bewijs van de onbeschikbaarheid",
    ),
}

_HEADLINE = {
    Cause.INFRASTRUCTURE: {
        "en": "OUTAGE: internet, phone network or power (a third party). Workers are EXEMPT.",
        "fr": "PANNE : internet, r\u00e9seau t\u00e9l\u00e9phonique ou \u00e9lectricit\u00e9 (un tiers). Les "
        "travailleurs sont DISPENS\u00c9S.",
        "nl": "STORING: internet, telefoonnet of stroom (een derde). De werknemers zijn VRIJGESTELD.",
    },
    Cause.SERVICE: {
        "en": "OUTAGE: Check In and Out at Work itself is unavailable. Workers are EXEMPT.",
        "fr": "PANNE : le service Check In and Out at Work est indisponible. Les travailleurs sont DISPENS\u00c9S.",
        "nl": "STORING: Check In and Out at Work zelf is onbeschikbaar. De werknemers zijn VRIJGESTELD.",
    },
    Cause.OURS: {
        "en": "FAULT ON OUR SIDE (the gate, its settings, credentials or disk). NO exemption.",
        "fr": "PANNE DE NOTRE C\u00d4T\u00c9 (le portique, sa configuration, ses certificats ou son disque). "
        "AUCUNE dispense.",
        "nl": "STORING AAN ONZE KANT (de toegangspoort, haar instellingen, certificaten of schijf). GEEN vrijstelling.",
    },
    Cause.UNKNOWN: {
        "en": "REGISTRATION IMPOSSIBLE, cause not established. NO exemption may be assumed.",
        "fr": "ENREGISTREMENT IMPOSSIBLE, cause non \u00e9tablie. AUCUNE dispense ne peut \u00eatre suppos\u00e9e.",
        "nl": "REGISTRATIE ONMOGELIJK, oorzaak niet vastgesteld. Er mag GEEN vrijstelling worden aangenomen.",
    },
}

_EXEMPT_STEPS = {
    "en": [
        (
            "keep badging at the gate",
            "it records everyone and keeps signed evidence of the unavailability (the inspection may check it)",
        ),
        ("nothing else to do", "when it is solved, registration resumes at the next start or end of work"),
    ],
    "fr": [
        (
            "continuez \u00e0 badger",
            "le portique enregistre chacun et garde la preuve sign\u00e9e de l'indisponibilit\u00e9 (l'inspection "
            "peut la v\u00e9rifier)",
        ),
        (
            "rien d'autre \u00e0 faire",
            "une fois le probl\u00e8me r\u00e9solu, l'enregistrement reprend au moment suivant (d\u00e9but ou fin "
            "du travail)",
        ),
    ],
    "nl": [
        (
            "blijf badgen",
            "de toegangspoort registreert iedereen en bewaart een ondertekend bewijs van de onbeschikbaarheid (de "
            "inspectie kan het nagaan)",
        ),
        (
            "verder niets te doen",
            "zodra het opgelost is, wordt opnieuw geregistreerd bij het volgende moment (begin of einde van het werk)",
        ),
    ],
}

_PROVIDER = {
    "en": ("call the gate's provider (technician) now", "the fault is theirs to fix"),
    "fr": ("appelez maintenant le fournisseur du portique (technicien)", "c'est \u00e0 lui de r\u00e9parer"),
    "nl": ("bel nu de leverancier van de toegangspoort (technicus)", "het is aan hem om het te herstellen"),
}

_STATE = {
    Operation.WORKING: {
        "en": "Working: registrations are delivered.",
        "fr": "En service : les enregistrements sont transmis.",
        "nl": "In werking: de registraties worden doorgestuurd.",
    },
    Operation.WAITING: {
        "en": "Working: some registrations are waiting to be sent; nothing to do.",
        "fr": "En service : des enregistrements attendent d'\u00eatre transmis ; rien \u00e0 faire.",
        "nl": "In werking: sommige registraties wachten om verzonden te worden; niets te doen.",
    },
    OutageState.SUSPECTED: {
        "en": "Registration is failing since {since}; the gate is checking why. Keep badging; no decision yet.",
        "fr": "L'enregistrement \u00e9choue depuis {since} ; le portique v\u00e9rifie pourquoi. Continuez \u00e0 "
        "badger ; pas encore de d\u00e9cision.",
        "nl": "Registreren mislukt sinds {since}; de toegangspoort zoekt uit waarom. Blijf badgen; nog geen "
        "beslissing.",
    },
    Operation.DOWN: {
        "en": "THE GATE IS NOT WORKING: badges are not recorded. NO exemption.",
        "fr": "LE PORTIQUE NE FONCTIONNE PAS : les badges ne sont pas enregistr\u00e9s. AUCUNE dispense.",
        "nl": "DE TOEGANGSPOORT WERKT NIET: de badges worden niet geregistreerd. GEEN vrijstelling.",
    },
    OutageState.NEVER_CONNECTED: {
        "en": "NEVER CONNECTED: this gate has never delivered a registration. The procedure gives NO exemption where "
        "the connection is permanently missing: {steps}",
        "fr": "JAMAIS CONNECT\u00c9 : ce portique n'a jamais transmis d'enregistrement. La proc\u00e9dure ne donne "
        "AUCUNE dispense quand la connexion manque en permanence : {steps}",
        "nl": "NOOIT VERBONDEN: deze toegangspoort heeft nog nooit een registratie doorgestuurd. De procedure geeft "
        "GEEN vrijstelling waar de verbinding permanent ontbreekt: {steps}",
    },
}


@dataclass(frozen=True)
class ProcedureStep:
    """One step of the procedure: the action (a foreman reads it first, on the page in bold) and its detail."""

    action: str
    detail: str

    def __str__(self) -> str:
        return f"{self.action} {self.detail}"


def _step(pair: tuple[str, str]) -> ProcedureStep:
    action, detail = pair
    return ProcedureStep(_sentence(action), _sentence(detail))


def _sentence(text: str) -> str:
    return f"{text[0].upper()}{text[1:]}{'' if text.endswith('.') else '.'}"


def _numbered(steps: list[ProcedureStep]) -> str:
    return " ".join(f"{index}. {step}" for index, step in enumerate(steps, start=1))


def steps(cause: Cause | str, language: str, other_tried: str | None = None) -> tuple[str, list[ProcedureStep]]:
    """The headline and the procedure's steps for one cause. other_tried: the other channel, when the gate tried it
    itself (the evidence shows it): the foreman is told, and the step "another channel" is what is left to try."""
    cause = Cause(cause)
    tried = None
    if other_tried:
        then, evidence = _OTHER_TRIED_THEN[language]
        tried = (_OTHER_TRIED[language].format(channel=other_tried.upper()), evidence if cause.exempt else then)
    if cause.exempt:
        return _HEADLINE[cause][language], [_step(pair) for pair in [*_EXEMPT_STEPS[language], *filter(None, [tried])]]
    found = [tried or _OTHER_CHANNEL[language], _CONTACT[language], _LISTING[language]]
    if cause is Cause.OURS:
        found.insert(0, _PROVIDER[language])
    return _HEADLINE[cause][language], [_step(pair) for pair in found]


def state_steps(state: Operation | OutageState, language: str) -> tuple[str, list[ProcedureStep]]:
    """The headline and steps of a state that stops registration without an episode: the gate stopped (the
    technician first, then another way: nothing is recorded here), or never connected."""
    found = [_PROVIDER[language], _OTHER_CHANNEL[language]]
    if state == Operation.DOWN:
        found.append(_CONTACT[language])
    return _STATE[state][language].removesuffix(": {steps}"), [_step(pair) for pair in found]


def what_to_do(cause: Cause | str, language: str, other_tried: str | None = None) -> str:
    """The headline and the numbered steps of the procedure for one cause."""
    headline, found = steps(cause, language, other_tried)
    return f"{headline} {' '.join(map(str, found)) if Cause(cause).exempt else _numbered(found)}"


def state_line(state: Operation | OutageState, language: str, **values: str) -> str:
    """One line for the gate's state: working, waiting, suspected or never connected."""
    text = _STATE[state][language]
    if state == OutageState.NEVER_CONNECTED:
        values = {"steps": _numbered([_step(_PROVIDER[language]), _step(_OTHER_CHANNEL[language])]), **values}
    return text.format(**values)


TECHNICIAN = (
    "Technician: `sitegate outage --json` shows every probe with its time; `sitegate status` the device's health; "
    "record the contact centre's number with `sitegate outage reference REF [--employer KBO]`; print with "
    "`sitegate paper print [--employer KBO]`."
)
