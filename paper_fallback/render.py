"""The listing on paper: A4 PDF (fpdf2) and 80 mm thermal slips (python-escpos).

Every page (every cut slip) describes itself: reference, works-declaration number, date, device, "page N of M",
so a page found alone still proves what it is. Names wrap inside their cells. The PDF embeds DejaVu Sans (shipped)
and, for scripts it lacks (Chinese, Japanese, Korean), a system CJK font when one is installed; a name that no
font can draw gets a box to write it by hand, with a warning naming the worker, never a blank cell. A thermal
printer has only its code pages: a letter missing from all of them is transliterated and said so on the slip
(Ș→Ş), and a name that cannot be printed at all gets a box to write it by hand, with a warning: never a silent "?".
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import qrcode
from fpdf import FPDF

from sitegate.domain.presence import DOUBT_MARK, DOUBT_WORDS
from sitegate.paper_fallback.listing import Listing, Row

# Fonts that cover what DejaVu Sans does not (CJK); the first one installed is embedded as a fallback.
CJK_FONTS = (
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 0),  # Debian fonts-noto-cjk
    (Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"), 0),  # Debian fonts-droid-fallback
)
SLIP_ROWS = 20  # workers per cut part of a thermal listing: each part is self-describing
SLIP_WIDTH = 42  # characters per line on 80 mm paper with font A
# Romanian comma-below letters are in no ESC/POS code page; their cedilla forms, in common use, are.
CEDILLA = {"Ș": "Ş", "ș": "ş", "Ț": "Ţ", "ț": "ţ"}

LABELS = {
    "en": {
        "title": "Emergency attendance listing",
        "subtitle": "Check In and Out at Work: emergency procedure (registration technically impossible)",
        "reference": "Reference number (contact centre 02 511 51 51)",
        "to_write": "________________ (write the number given by the contact centre)",
        "works": "Works-declaration number",
        "none": "none (no works declaration for this site)",
        "date": "Date",
        "device": "Device",
        "page": "page {n} of {m}",
        "employer_only": "Employer",
        "whole_site": "whole site",
        "columns": ("#", "NISS / Limosa L1", "Last name", "First name", "Employer", "IN", "OUT", "Signature"),
        "expected": "expected, not badged",
        "others": "References of employers who called separately",
        "earlier": "Other references of the day",
        "coverage": "Each reference, its outage and the rows (#) it covers",
        "gates": "Gates of the site on this listing",
        "printed": "printed {at} (clock {clock})",
        "clock_unknown": "state unknown",
        "clock": {"synced": "synced", "unsynced": "not synced", "stepped": "stepped", "offset_warning": "drifting"},
        "checkpoint": "Log checkpoint: record {seq}, hash {hash}",
        "log_empty": "Log checkpoint: none, the log is empty",
        "key": "Device key {fp}: check with `sitegate verify --fingerprint`",
        "sign": "Name and signature of the employer or foreman:",
        "by_hand": "(name not printable here: write it by hand)",
        "transliterated": "* letters this printer lacks were replaced by the nearest (Romanian S/T with a comma "
        "printed with a cedilla): check the spelling on the PDF",
    },
    "fr": {
        "title": "Liste de présence d'urgence",
        "subtitle": "Check In and Out at Work : procédure d'urgence (enregistrement techniquement impossible)",
        "reference": "Numéro de référence (centre de contact 02 511 51 51)",
        "to_write": "________________ (inscrivez le numéro donné par le centre de contact)",
        "works": "Numéro de déclaration de travaux",
        "none": "aucun (pas de déclaration de travaux pour ce lieu)",
        "date": "Date",
        "device": "Appareil",
        "page": "page {n} sur {m}",
        "employer_only": "Employeur",
        "whole_site": "tout le chantier",
        "columns": ("#", "NISS / Limosa L1", "Nom", "Prénom", "Employeur", "ENTRÉE", "SORTIE", "Signature"),
        "expected": "attendu, pas badgé",
        "others": "Références des employeurs ayant appelé séparément",
        "earlier": "Autres références du jour",
        "coverage": "Chaque référence, sa panne et les lignes (#) qu'elle couvre",
        "gates": "Portiques du chantier sur cette liste",
        "printed": "imprimé le {at} (horloge {clock})",
        "clock_unknown": "état inconnu",
        "clock": {
            "synced": "synchronisée",
            "unsynced": "non synchronisée",
            "stepped": "corrigée d'un saut",
            "offset_warning": "en dérive",
        },
        "checkpoint": "Point de contrôle du journal : enregistrement {seq}, empreinte {hash}",
        "log_empty": "Point de contrôle du journal : aucun, le journal est vide",
        "key": "Clé de l'appareil {fp} : vérifier avec `sitegate verify --fingerprint`",
        "sign": "Nom et signature de l'employeur ou du chef d'équipe :",
        "by_hand": "(nom non imprimable ici : l'écrire à la main)",
        "transliterated": "* lettres absentes de cette imprimante remplacées par les plus proches (S/T roumains à "
        "virgule imprimés avec cédille) : orthographe exacte sur le PDF",
    },
    "nl": {
        "title": "Noodaanwezigheidslijst",
        "subtitle": "Check In and Out at Work: noodprocedure (registratie technisch onmogelijk)",
        "reference": "Referentienummer (contactcenter 02 511 51 51)",
        "to_write": "________________ (noteer het nummer van het contactcenter)",
        "works": "Nummer van de werkaangifte",
        "none": "geen (geen werkaangifte voor deze plaats)",
        "date": "Datum",
        "device": "Toestel",
        "page": "pagina {n} van {m}",
        "employer_only": "Werkgever",
        "whole_site": "hele werf",
        "columns": ("#", "INSZ / Limosa L1", "Naam", "Voornaam", "Werkgever", "IN", "UIT", "Handtekening"),
        "expected": "verwacht, niet gebadged",
        "others": "Referenties van werkgevers die apart belden",
        "earlier": "Andere referenties van de dag",
        "coverage": "Elke referentie, haar storing en de rijen (#) die ze dekt",
        "gates": "Toegangspoorten van de werf op deze lijst",
        "printed": "afgedrukt {at} (klok {clock})",
        "clock_unknown": "toestand onbekend",
        "clock": {
            "synced": "gesynchroniseerd",
            "unsynced": "niet gesynchroniseerd",
            "stepped": "verzet",
            "offset_warning": "loopt uit",
        },
        "checkpoint": "Controlepunt van het logboek: record {seq}, hash {hash}",
        "log_empty": "Controlepunt van het logboek: geen, het logboek is leeg",
        "key": "Sleutel van het toestel {fp}: na te gaan met `sitegate verify --fingerprint`",
        "sign": "Naam en handtekening van de werkgever of ploegbaas:",
        "by_hand": "(naam hier niet afdrukbaar: met de hand invullen)",
        "transliterated": "* letters die deze printer mist zijn vervangen door de dichtstbijzijnde (Roemeense S/T "
        "met komma gedrukt met cedille): juiste spelling op de PDF",
    },
}
COLUMN_WIDTHS = (8, 38, 46, 36, 54, 17, 17, 61)  # mm, landscape A4 (277 mm inside the margins)


def _checkpoint_line(listing: Listing, labels: dict) -> str:
    """The head the paper can be checked against, or that there is none (an empty log has no head)."""
    if listing.checkpoint is None:
        return labels["log_empty"]
    return labels["checkpoint"].format(seq=listing.checkpoint_seq, hash=listing.checkpoint_hash[:16])


def _printed_line(listing: Listing, labels: dict) -> str:
    """When it was printed and the clock's state then, in the listing's language (a state not named: unknown)."""
    clock = labels["clock"].get(listing.clock_state, labels["clock_unknown"])
    return labels["printed"].format(at=listing.printed_at, clock=clock)


def _font_path(name: str) -> str:
    return str(resources.files("sitegate.paper_fallback").joinpath(f"fonts/{name}"))


def _qr_png(text: str) -> io.BytesIO:
    buffer = io.BytesIO()
    qrcode.make(text, box_size=4, border=1).save(buffer, format="PNG")
    buffer.seek(0)
    return buffer


def _names(row: Row) -> tuple[str, str, str]:
    return row.last_name, row.first_name, row.employer_name


def _employer(row: Row) -> str:
    return f"{row.employer_name}\n{row.employer}" if row.employer_name else row.employer


class _ListingPDF(FPDF):
    """A page header and footer on every page: a page found alone still says what it is."""

    def __init__(self, listing: Listing) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.listing = listing
        self.labels = LABELS[listing.language]
        self.add_font("DejaVu", "", _font_path("DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", _font_path("DejaVuSans-Bold.ttf"))
        self.coverage = [set(self.fonts["dejavu"].cmap)]
        fallback = next(((path, number) for path, number in CJK_FONTS if path.is_file()), None)
        if fallback and self.missing(listing):  # a fallback font costs time on every cell: only when needed
            self.add_font("CJK", "", str(fallback[0]), collection_font_number=fallback[1])
            self.set_fallback_fonts(["CJK"], exact_match=False)
            self.coverage.append(set(self.fonts["cjk"].cmap))
        self.set_auto_page_break(auto=True, margin=16)

    def missing(self, listing: Listing) -> bool:
        """Does any name need a glyph the loaded fonts lack?"""
        return any(self.undrawable(text) for row in listing.rows for text in _names(row))

    def undrawable(self, text: str) -> str:
        return "".join(c for c in text if not c.isspace() and not any(ord(c) in cmap for cmap in self.coverage))

    def header(self) -> None:
        listing, labels = self.listing, self.labels
        self.set_font("DejaVu", "B", 12)
        self.cell(0, 6, labels["title"], new_x="LMARGIN", new_y="NEXT")
        self.set_font("DejaVu", "", 7.5)
        self.cell(0, 4, labels["subtitle"], new_x="LMARGIN", new_y="NEXT")
        scope = f"{listing.employer}" if listing.employer else labels["whole_site"]
        for label, value in (
            (labels["reference"], listing.reference or labels["to_write"]),
            (labels["works"], listing.works_declaration or labels["none"]),
            (labels["date"], listing.day.strftime("%d/%m/%Y")),
            (labels["employer_only"], scope),
        ):
            self.set_font("DejaVu", "", 8.5)
            self.cell(100, 5, f"{label}:")
            self.set_font("DejaVu", "B", 10)
            self.cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")
        self.ln(2)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", "", 7.5)
        listing = self.listing
        page = self.labels["page"].format(n=self.page_no(), m="{nb}")
        self.cell(
            0,
            4,
            f"{self.labels['device']} {listing.device_id} — {listing.day:%d/%m/%Y} — "
            f"{listing.reference or '…'} — {page}",
            align="C",
        )

    def drawable(self, text: str) -> str:
        """The text, or the box label when a letter of it is in no installed font (never a blank cell)."""
        return self.labels["by_hand"] if self.undrawable(text) else text


def pdf(listing: Listing) -> tuple[bytes, list[str]]:
    """The A4 listing, and what the foreman must know: the names no installed font can draw, left to write by hand
    (one unusual name must never leave the site without its listing that day)."""
    document = _ListingPDF(listing)
    labels = document.labels
    notes = [
        f"worker {row.number}: no installed font can draw the name {document.undrawable(''.join(_names(row)))!r}: "
        "write it by hand in its box (Debian: `sudo apt-get install fonts-noto` covers more scripts)"
        for row in listing.rows
        if any(document.undrawable(text) for text in _names(row))
    ]
    document.set_title(f"{labels['title']} {listing.day.isoformat()} {listing.works_declaration or ''}".strip())
    document.add_page()
    document.set_font("DejaVu", "", 8.5)
    entries = [
        (
            f"{index}{' ' + DOUBT_MARK if row.doubt else ''}",
            f"{row.number}\n{row.kind}",
            document.drawable(row.last_name),
            document.drawable(row.first_name),
            _employer(replace(row, employer_name=document.drawable(row.employer_name))),
            row.time_in if row.badged else labels["expected"],
            row.time_out,
            "",
        )
        for index, row in enumerate(listing.rows, start=1)
    ]
    entries += [(str(len(entries) + i + 1), "", "", "", "", "", "", "") for i in range(listing.blank_rows)]
    with document.table(
        col_widths=COLUMN_WIDTHS,
        width=sum(COLUMN_WIDTHS),
        text_align="LEFT",
        line_height=4.2,
        min_row_height=8,
        repeat_headings=1,
    ) as table:
        table.row(labels["columns"])
        for entry in entries:
            table.row(entry)
    document.ln(3)
    if any(row.doubt for row in listing.rows):
        document.set_font("DejaVu", "", 8.5)
        document.multi_cell(0, 5, DOUBT_WORDS["legend"][listing.language], new_x="LMARGIN", new_y="NEXT")
    if listing.other_references:
        document.set_font("DejaVu", "", 8.5)
        others = "; ".join(f"{kbo}: {ref}" for kbo, ref in listing.other_references.items())
        document.multi_cell(0, 5, f"{labels['others']}: {others}", new_x="LMARGIN", new_y="NEXT")
    if listing.earlier_references:
        document.set_font("DejaVu", "", 8.5)
        earlier = "; ".join(listing.earlier_references)
        document.multi_cell(0, 5, f"{labels['earlier']}: {earlier}", new_x="LMARGIN", new_y="NEXT")
    if listing.coverage:
        document.set_font("DejaVu", "", 8.5)
        covered = "; ".join(listing.coverage)
        document.multi_cell(0, 5, f"{labels['coverage']}: {covered}", new_x="LMARGIN", new_y="NEXT")
    if listing.gates:
        document.set_font("DejaVu", "", 8.5)
        document.multi_cell(0, 5, f"{labels['gates']}: {'; '.join(listing.gates)}", new_x="LMARGIN", new_y="NEXT")
    if document.will_page_break(32):
        document.add_page()
    y = document.get_y()
    if listing.checkpoint:
        document.image(_qr_png(listing.checkpoint), x=250, y=y, w=28)
    document.set_font("DejaVu", "", 8)
    for line in (
        f"{labels['device']} {listing.device_id} — " + _printed_line(listing, labels),
        _checkpoint_line(listing, labels),
        labels["key"].format(fp=listing.key_fingerprint),
        "",
        labels["sign"],
        "",
        "_______________________________________________",
    ):
        document.cell(230, 4.5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output()), notes


@dataclass
class SlipText:
    """What a thermal printer can print of a text, and what had to change."""

    text: str
    notes: list[str] = field(default_factory=list)
    unprintable: bool = False


def slip_text(text: str, can_encode: Callable[[str], bool]) -> SlipText:
    """Letters missing from every code page: Ș→Ş, else the base letter, said in a note; else not printable."""
    shown, changed = [], False
    for char in text:
        if can_encode(char):
            shown.append(char)
            continue
        candidates = [CEDILLA.get(char, ""), unicodedata.normalize("NFKD", char)[:1]]
        substitute = next((c for c in candidates if c and can_encode(c)), None)
        if substitute is None:
            return SlipText(text, unprintable=True)
        shown.append(substitute)
        changed = True
    result = "".join(shown)
    return SlipText(result, [f"{text} printed as {result}"] if changed else [])


@dataclass
class SlipReport:
    """What the thermal rendering had to change: the command says so (and exits with a warning)."""

    transliterated: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)  # numbers of the rows whose name must be written by hand


def escpos(listing: Listing, printer) -> SlipReport:
    """The listing on a python-escpos printer, in cut parts of SLIP_ROWS workers, each describing itself."""
    labels, report = LABELS[listing.language], SlipReport()
    encoder = printer.magic.encoder

    def can_encode(char: str) -> bool:
        return ord(char) < 128 or encoder.find_suitable_encoding(char) is not None

    rows = list(listing.rows)
    parts = [rows[i : i + SLIP_ROWS] for i in range(0, len(rows), SLIP_ROWS)] or [[]]
    for number, part in enumerate(parts, start=1):
        printer.set(align="center", bold=True, double_height=True)
        printer.textln(labels["title"].upper())
        printer.set(align="left", bold=False, double_height=False)
        printer.textln("Check In and Out at Work")
        printer.textln("-" * SLIP_WIDTH)
        printer.textln(f"{labels['reference'].split(' (')[0]}: {listing.reference or '______________'}")
        printer.textln(f"{labels['works']}: {listing.works_declaration or labels['none']}")
        printer.textln(f"{labels['date']}: {listing.day.strftime('%d/%m/%Y')}")
        printer.textln(f"{labels['employer_only']}: {listing.employer or labels['whole_site']}")
        printer.textln(f"{labels['device']} {listing.device_id} - {labels['page'].format(n=number, m=len(parts))}")
        printer.textln("-" * SLIP_WIDTH)
        first, marked = (number - 1) * SLIP_ROWS + 1, False
        for index, row in enumerate(part, start=first):
            name = slip_text(f"{row.last_name}, {row.first_name}", can_encode)
            employer = slip_text(row.employer_name, can_encode) if row.employer_name else SlipText("")
            printer.textln(f"{index:>3} {row.number} {row.kind}{' ' + DOUBT_MARK if row.doubt else ''}")
            if name.unprintable:
                report.by_hand.append(row.number)
                printer.textln(f"    {labels['by_hand']}")
                printer.textln("    ______________________________________")
            else:
                printer.textln(f"    {name.text}{' *' if name.notes else ''}")
                report.transliterated += name.notes
                marked = marked or bool(name.notes)
            in_out = (
                f"{labels['columns'][5]} {row.time_in or '--:--'}  {labels['columns'][6]} {row.time_out or '--:--'}"
            )
            printer.textln(f"    {in_out if row.badged else labels['expected']}")
            printer.textln(f"    {employer.text if not employer.unprintable else ''} {row.employer}".rstrip())
        if number == len(parts):
            for index in range(len(rows) + 1, len(rows) + listing.blank_rows + 1):
                printer.textln(f"{index:>3} ______________________________________")
                printer.textln("    ______________________________________")
        if marked:
            printer.textln(labels["transliterated"])
        if any(row.doubt for row in part):
            printer.textln(slip_text(DOUBT_WORDS["legend"][listing.language], can_encode).text)
        printer.textln("-" * SLIP_WIDTH)
        for line in [labels["gates"] + ":", *listing.gates] if listing.gates else []:
            printer.textln(line)
        for line in [labels["earlier"] + ":", *listing.earlier_references] if listing.earlier_references else []:
            printer.textln(line)
        for line in [labels["coverage"] + ":", *listing.coverage] if listing.coverage else []:
            printer.textln(line)
        printer.textln(_printed_line(listing, labels))
        printer.textln(_checkpoint_line(listing, labels))
        if number == len(parts) and listing.checkpoint:
            printer.qr(listing.checkpoint, size=4)
        printer.textln(labels["sign"])
        printer.textln("\n\n__________________________________")
        printer.cut()
    return report
