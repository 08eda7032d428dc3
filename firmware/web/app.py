"""The page's routes (Bottle): sign-in, the state, who is on site, today, the reference, the listing.

Reads go through a read-only connection opened per request. What causes a signed record (the reference number,
a listing downloaded or printed) is asked of the daemon over its local socket (sitegate.page_actions), which
signs it with the same functions as `sitegate outage reference` and `sitegate paper print`: the page holds no
key and never writes the log. Nothing else is offered: no roster, no settings.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from urllib.parse import urlencode

import bottle
import sqlite_utils

from sitegate.clock import Clock
from sitegate.clock.timefmt import local, show
from sitegate.config import Config
from sitegate.domain.identifiers import normalise_enterprise_number
from sitegate.domain.presence import DOUBT_MARK, DOUBT_WORDS
from sitegate.errors import IdentifierError, SitegateError
from sitegate.jsonlog import event
from sitegate.page_actions import GateUnavailable, ask
from sitegate.paper_fallback.outage import check_reference
from sitegate.queue import database
from sitegate.queue.log import LogView
from sitegate.queue.records import Kind
from sitegate.service.remarks import OUR_TRANSLATION
from sitegate.web import views
from sitegate.web.auth import Gatekeeper, Session, same, same_origin
from sitegate.web.words import LANGUAGES, named, say

logger = logging.getLogger("sitegate.web")
COOKIE = "sitegate_session"
LOGIN_COOKIE = "sitegate_login"
HERE = resources.files("sitegate.web")
TEMPLATES = [str(HERE / "templates")]
STATIC = str(HERE / "static")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def make_app(config: Config, clock: Clock) -> bottle.Bottle:
    app = bottle.Bottle()
    keeper = Gatekeeper(config.web)
    secure = config.web.tls_cert is not None

    @contextmanager
    def reading() -> Iterator[sqlite_utils.Database]:
        db = database.connect_readonly(config.database_path)
        try:
            yield db
        finally:
            db.close()

    def language(session: Session | None = None) -> str:
        asked = bottle.request.query.get("lang")
        if asked in LANGUAGES:
            if session is not None:
                session.language = asked
            return asked
        return session.language if session else config.site.language

    def page(name: str, session: Session | None, status: int = 200, **values) -> str:
        bottle.response.status = status
        lang = language(session)
        values.setdefault("message", None)
        values.setdefault("error", None)
        return bottle.template(
            name,
            template_lookup=TEMPLATES,
            say=lambda word, **v: say(word, lang, **v),
            name=lambda kind, value: named(kind, value, lang),
            phone_linked=views.phone_linked,
            printer=views.printer_configured(config),
            employers=config.site.employers,
            lang=lang,
            languages=LANGUAGES,
            session=session,
            device_id=config.device_id,
            show=show,
            hhmm=lambda utc: local(utc).strftime("%H:%M"),
            path=bottle.request.path if bottle.request.method == "GET" else "/",
            **values,
        )

    def own_origin() -> str:
        return f"{bottle.request.urlparts.scheme}://{bottle.request.get_header('Host', '')}"

    def signed_in() -> Session:
        """The session of this request; without one, a page sends to sign-in and a form post is refused."""
        session = keeper.session(bottle.request.get_cookie(COOKIE), clock.now())
        if session is None:
            if bottle.request.method == "GET":
                bottle.redirect("/login" + (f"?{urlencode({'lang': language()})}"), 303)
            bottle.abort(403, "sign in first")
        return session

    def form_checked(session: Session) -> None:
        """A form post must come from this page (Origin) and carry the session's CSRF token."""
        origin, referer = bottle.request.get_header("Origin"), bottle.request.get_header("Referer")
        if not same_origin(origin, referer, own_origin()) or not same(session.csrf, bottle.request.forms.get("csrf")):
            event(logger, "web_cross_site_refused", logging.WARNING, path=bottle.request.path, origin=origin)
            bottle.abort(403, "this form did not come from the gate's page")

    def with_session(handler: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            session = signed_in()
            if bottle.request.method == "POST":
                form_checked(session)
            return handler(session, *args, **kwargs)

        return wrapped

    @app.hook("after_request")
    def _headers() -> None:
        for name, value in HEADERS.items():
            bottle.response.set_header(name, value)

    def set_cookie(name: str, value: str, **options) -> None:
        bottle.response.set_cookie(name, value, httponly=True, samesite="strict", secure=secure, path="/", **options)

    @app.get("/login")
    def login_form():
        token = secrets.token_urlsafe(32)
        set_cookie(LOGIN_COOKIE, token, max_age=3600)
        return page("login.tpl", None, token=token)

    @app.post("/login")
    def login():
        lang = bottle.request.forms.get("lang") if bottle.request.forms.get("lang") in LANGUAGES else language()
        origin, referer = bottle.request.get_header("Origin"), bottle.request.get_header("Referer")
        token = bottle.request.forms.get("token")
        if not same_origin(origin, referer, own_origin()) or not same(bottle.request.get_cookie(LOGIN_COOKIE), token):
            event(logger, "web_cross_site_refused", logging.WARNING, path="/login", origin=origin)
            bottle.abort(403, "this form did not come from the gate's page")
        # The socket's peer, never X-Forwarded-For (Bottle's remote_addr trusts it): a client cannot pick its address.
        address, now = bottle.request.environ.get("REMOTE_ADDR", ""), clock.now()
        fresh = secrets.token_urlsafe(32)
        set_cookie(LOGIN_COOKIE, fresh, max_age=3600)
        wait = keeper.wait_s(address, now)
        if wait > 0:
            event(logger, "web_sign_in_throttled", logging.WARNING, address=address, wait_s=round(wait))
            bottle.response.set_header("Retry-After", str(int(wait) + 1))
            return page("login.tpl", None, 429, token=fresh, error=say("wait", lang, seconds=int(wait) + 1))
        session = keeper.sign_in(bottle.request.forms.get("pin", ""), address, lang, now)
        if session is None:
            event(logger, "web_sign_in_failed", logging.WARNING, address=address)
            return page("login.tpl", None, 401, token=fresh, error=say("wrong_pin", lang))
        event(logger, "web_signed_in", foreman=session.foreman, address=address)
        set_cookie(COOKIE, session.token, max_age=int(config.web.session_hours * 3600))
        bottle.redirect("/", 303)

    @app.post("/logout")
    @with_session
    def logout(session: Session):
        keeper.sign_out(session.token)
        bottle.response.delete_cookie(COOKIE, path="/")
        bottle.redirect("/login", 303)

    def home(session: Session, status: int = 200, **values) -> str:
        now, lang = clock.now(), language(session)
        with reading() as db:
            state = views.state(db, config, now, lang)
            references = views.references_today(db, now)
            done = bottle.request.query.get("done")
            record = LogView(db).get(int(done)) if done and done.isdigit() else None
        if record is not None and not values.get("message"):  # the answer to the form just sent
            data = record.data
            if record.kind == Kind.OUTAGE_REFERENCE:
                values["message"] = say("recorded", lang, reference=data["reference"], seq=record.seq)
            elif record.kind == Kind.PAPER_LISTING:
                values["message"] = say("printed", lang, seq=record.seq)
        return page("home.tpl", session, status, state=state, references=references, **values)

    @app.get("/")
    @with_session
    def index(session: Session):
        return home(session)

    @app.get("/onsite")
    @with_session
    def onsite(session: Session):
        now = clock.now()
        with reading() as db:
            present = views.who_is_on_site(db, config, now)
            doubts = views.direction_doubts(db, config, now)
        return page("onsite.tpl", session, present=present, employer_name=config.site.employer_name, now_utc=now,
                    doubts=doubts, doubt_words=DOUBT_WORDS, doubt_mark=DOUBT_MARK)  # fmt: skip

    @app.get("/today")
    @with_session
    def today(session: Session):
        with reading() as db:
            registrations = views.todays_registrations(db, config, clock.now())
            remarks = views.remarks(db)
        lang = language(session)
        return page(
            "today.tpl",
            session,
            registrations=registrations,
            remarks=remarks,
            remark_text=lambda item: views.remark_text(item, lang),
            remark_action=lambda item: views.remark_action(item, lang),
            our_translation=OUR_TRANSLATION[lang],
        )

    @app.post("/reference")
    @with_session
    def reference(session: Session):
        text = (bottle.request.forms.getunicode("reference") or "").strip()
        employer_text = (bottle.request.forms.getunicode("employer") or "").strip()
        if not text:
            return home(session, 400, error=say("empty_reference", session.language))
        try:
            text = check_reference(text)
        except IdentifierError:
            return home(session, 400, error=say("bad_reference", session.language))
        try:
            employer = normalise_enterprise_number(employer_text, "employer") if employer_text else None
        except IdentifierError:
            return home(session, 400, error=say("bad_employer", session.language))
        try:
            seq = ask(config, {"action": "reference", "reference": text, "employer": employer, "by": session.foreman})[
                "seq"
            ]
        except SitegateError as error:
            return failed_action(session, "reference", error)
        event(logger, "web_reference_recorded", seq=seq, foreman=session.foreman, employer=employer)
        bottle.redirect(f"/?done={seq}", 303)

    @app.post("/listing.pdf")
    @with_session
    def listing_pdf(session: Session):
        try:
            request = {"action": "download", "language": session.language, "by": session.foreman}
            found = ask(config, {**request, "employer": listing_employer()})
        except SitegateError as error:
            return failed_action(session, "download", error)
        event(logger, "web_listing_downloaded", seq=found["seq"], foreman=session.foreman, workers=found["workers"])
        bottle.response.content_type = "application/pdf"
        bottle.response.set_header("Content-Disposition", f'attachment; filename="listing-{found["day"]}.pdf"')
        return base64.b64decode(found["pdf"])

    @app.post("/print")
    @with_session
    def print_listing(session: Session):
        try:
            printed = ask(config, {"action": "print", "by": session.foreman, "employer": listing_employer()})
        except SitegateError as error:
            return failed_action(session, "print", error)
        event(logger, "web_listing_printed", seq=printed["seq"], foreman=session.foreman)
        bottle.redirect(f"/?done={printed['seq']}", 303)

    def listing_employer() -> str | None:
        """The employer chosen for the listing: one of the site's, or none (the whole site)."""
        chosen = bottle.request.forms.get("employer") or None
        return chosen if chosen in config.site.employer_numbers else None

    def failed_action(session: Session, action: str, error: SitegateError) -> str:
        """A button the daemon could not serve: the foreman reads what to do in the page's language, the
        technician the problem in the journal."""
        event(logger, f"web_{action}_failed", logging.ERROR, problem=error.problem, foreman=session.foreman)
        if isinstance(error, GateUnavailable):
            word = "gate_unavailable"
        else:
            word = "print_failed" if action == "print" else "action_failed"
        return home(session, 503, error=say(word, session.language))

    @app.get("/static/<filename>")
    def static(filename: str):
        return bottle.static_file(filename, root=STATIC)

    @app.get("/favicon.ico")
    def favicon():
        return bottle.static_file("favicon.ico", root=STATIC, mimetype="image/x-icon")

    @app.error(403)
    def refused(error: bottle.HTTPError) -> str:
        bottle.response.content_type = "text/plain; charset=utf-8"
        return f"refused: {error.body}\n"

    return app
