"""The web app: a drawing page and a small REST API around one loaded model.

    GET  /              the drawing page (static HTML/JS/CSS from this package, no network): it
                        preprocesses and predicts in the browser (mnist.js), with the weights
                        from /model.js; the same page as ``export --format web``
    POST /api/predict   an image upload (multipart field ``image``) or JSON {"pixels": [...]}: an
                        answer (state, label, calibrated probabilities, digit-likeness, message);
                        ``?explain=true`` adds the evidence map of the answer against the runner-up
    GET  /api/health    {"status": "ok"}
    GET  /api/model     dataset, classes, transform, metrics, created, parameters
    GET  /api/docs      the API's documentation (Swagger UI from local files: works offline)

Uploads go through :func:`mnist_logreg.preprocess.preprocess`; JSON pixels (784 numbers or
28x28, in [0, 1], or 0..255) are taken as already in MNIST form. Answers are
:class:`mnist_logreg.answers.Answer`'s: blank and too-small inputs are answers too (200, state
"blank" / "too-small", no label), as on the page. Errors are JSON
``{"error": "..."}`` with a 4xx status; bodies over ``max_body_bytes`` get 413 before they
are read whole.
"""

import asyncio
import json
import logging
import math
from pathlib import Path

STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_BODY = 10 * 1024 * 1024
PREPROCESS_SLOTS = 2     # images decoded and preprocessed at once (each up to ~50 MB): memory by design
PREPROCESS_QUEUE = 32    # more waiting than this: 503 with Retry-After, not an ever-growing queue
BODY_TIMEOUT = 20.0      # seconds a request body may stall between chunks before it is dropped (408)
MAX_JSON_DEPTH = 8       # {"pixels": [[...]]} needs 3; deeper JSON is refused before it is parsed
MAX_JSON_BYTES = 1024 * 1024  # 784 numbers with 17 digits each and spaces: ~20 kB
log = logging.getLogger("mnist_logreg.serve")


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, by Content-Length when
    given and by counting otherwise, without buffering more than the limit."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and b"transfer-encoding" in headers:  # two framings: a smuggling attempt
            return await _json_response(send, 400, {"error": "Content-Length and Transfer-Encoding together"})
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                return await _json_response(send, 400, {"error": "bad Content-Length header"})
            if too_big:
                return await _json_response(send, 413, {"error": f"request body over the {self.limit:,}-byte limit"})
        seen = 0
        sent = False

        async def limited_receive():
            nonlocal seen
            try:  # a body that stalls is dropped, not held forever
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT)
            except asyncio.TimeoutError:
                raise _Stalled() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message):
            nonlocal sent
            if message["type"] == "http.response.start":
                sent = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not sent:
                await _json_response(send, 413, {"error": f"request body over the {self.limit:,}-byte limit"})
        except _Stalled:
            log.warning("%s %s: body stalled for %.0f s; dropped", scope.get("method"), scope.get("path"), BODY_TIMEOUT)
            if not sent:
                await _json_response(send, 408, {"error": f"request body stalled for {BODY_TIMEOUT:.0f} s"})


#: what a browser may do with the page: its own scripts and styles only, no frames around it
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: Swagger UI's page starts itself with an inline script
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


#: the run's report: one self-contained page (inline styles, data: images), no script at all
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
              "frame-ancestors 'none'")


class _SecurityHeaders:
    """ASGI middleware: every response says nosniff, no framing, no referrer, and its CSP."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        csp = (DOCS_CSP if path.startswith("/api/docs") else REPORT_CSP if path == "/report" else PAGE_CSP).encode()

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers") or []) + [
                    (b"content-security-policy", csp), (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]
            await send(message)

        await self.app(scope, receive, with_headers)


class _TooLarge(Exception):
    pass


class _Stalled(Exception):
    pass


async def _json_response(send, status, obj):
    body = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _Refusal(Exception):
    """A request answered with a 4xx (or 503): status, message, extra headers."""

    def __init__(self, status: int, message: str, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class _Decoder:
    """Preprocesses uploaded images in worker threads, at most PREPROCESS_SLOTS at once (each
    holds up to ~50 MB while decoded), with at most PREPROCESS_QUEUE waiting: memory bounded by
    design, and a busy server says so (503, Retry-After) instead of queueing without end."""

    def __init__(self):
        self.slots, self.waiting = asyncio.Semaphore(PREPROCESS_SLOTS), 0

    async def __call__(self, work, data: bytes, name: str):
        from starlette.concurrency import run_in_threadpool

        from ..errors import ImageError

        if self.waiting >= PREPROCESS_QUEUE:
            raise _Refusal(503, "busy: too many images in the queue; retry shortly", {"Retry-After": "1"})
        self.waiting += 1
        try:
            async with self.slots:
                return await run_in_threadpool(work, data, name)
        except ImageError as e:
            raise _Refusal(422, str(e)) from None
        finally:
            self.waiting -= 1


async def _uploaded_image(request, decode: _Decoder, work):
    """``work(data, name)`` (preprocessing and the answer, in a worker thread) for a multipart
    upload (field ``image``, or ``file``)."""
    from starlette.requests import ClientDisconnect

    try:
        form = await request.form(max_files=1, max_fields=4)
    except (_TooLarge, _Stalled, ClientDisconnect):
        raise  # 413, 408, a log line: the middleware and the app's handler answer
    except Exception as e:  # malformed multipart
        raise _Refusal(400, f"malformed multipart body: {str(e)[:100]}") from None
    upload = form.get("image") or form.get("file")
    if upload is None or isinstance(upload, str):
        raise _Refusal(422, "multipart body needs a file field named 'image'")
    return await decode(work, await upload.read(), upload.filename or "upload")


async def _json_pixels(request):
    """The 28x28 input from a JSON body {"pixels": [...]}, and the body. 784 numbers need a few
    tens of kB: a body over MAX_JSON_BYTES is refused (413) as it arrives, and the depth scan
    and the parse run in a worker thread (a 10 MB body held the event loop 1.2 s, and every
    other request with it)."""
    from starlette.concurrency import run_in_threadpool

    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise _Refusal(413, f"a JSON body is at most {MAX_JSON_BYTES:,} bytes (784 numbers need far less)")
        chunks.append(chunk)
    body = await run_in_threadpool(_parse_json, b"".join(chunks))
    msg, x = _pixels(body)
    if msg:
        raise _Refusal(422, msg)
    return x, body


def _add_error_handlers(app) -> None:
    """Every error is {"error": ...}: refusals, 404 and 405 too; an aborted upload is one log line."""
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    @app.exception_handler(_Refusal)
    async def refused(request, exc):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def gone(request, exc):
        log.warning("%s %s: client disconnected before the body was read", request.method, request.url.path)
        return JSONResponse({"error": "client disconnected"}, status_code=400)


#: the names a page served on a loopback address may be reached by: any other Host header is a
#: DNS-rebinding page reading this server from the user's browser (400)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def create_app(checkpoint, max_body_bytes: int = DEFAULT_MAX_BODY, collect=None, collect_max: int | None = None,
               allowed_hosts=None):
    """A FastAPI app serving the model in ``checkpoint`` (loaded once, here). It keeps no state
    between requests: any number of processes can serve one port (``serve --workers N``).
    ``collect``: a folder where POST /api/examples saves the corrections people make on the page
    (examples.py's layout, at most ``collect_max`` of them); without it there is no such route
    and the page offers no "Wrong?" button. ``allowed_hosts``: the Host headers answered (None:
    any; ``serve`` on a loopback address passes :data:`LOOPBACK_HOSTS`)."""
    import numpy as np
    from fastapi import Request
    from fastapi_offline import FastAPIOffline

    from ..answers import Predictor
    from ..checkpoint import load_checkpoint
    from ..web import model_info, model_js

    ckpt = load_checkpoint(checkpoint)
    pred = Predictor.from_checkpoint(ckpt)
    info = model_info(ckpt)
    report = _report_of(checkpoint)
    script = model_js(ckpt, examples="server" if collect else None,
                      links={"docs": "api/docs", "report": "report" if report else None})

    app = FastAPIOffline(title="mnist-logreg", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                         static_url="/api/docs-assets", description=API_DESCRIPTION)
    _add_middleware(app, max_body_bytes, allowed_hosts)
    _add_error_handlers(app)
    _add_pages(app, script, report, info)
    _add_docs_and_links(app)
    decode = _Decoder()

    def answer(a, explain: bool) -> dict:
        out = {**a.to_dict(), "preprocessed": None if a.input is None else np.round(a.input.astype(np.float64), 4).tolist()}
        if explain and a.label is not None:
            e = pred.explain(a.input)
            out["evidence"] = {"label": e.label, "against": e.against, "bias": round(e.bias, 6),
                               "logit_difference": round(e.logit_difference, 6),
                               "map": np.round(e.map, 6).tolist()}
        return out

    @app.post("/api/predict", summary="Classify one image", responses=_prediction_responses(),
              openapi_extra={"requestBody": PREDICT_BODY})
    async def predict_endpoint(request: Request, explain: bool = False):
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            return answer(await _uploaded_image(request, decode, pred.answer), explain)
        if ctype.startswith("application/json") or not ctype:
            return answer(pred.answer((await _json_pixels(request))[0]), explain)
        raise _Refusal(415, f"unsupported content type {ctype!r}: send multipart/form-data (field 'image') "
                            f"or application/json {{\"pixels\": [...]}}")

    if collect:
        _add_collect(app, Path(collect), collect_max, len(pred.classes))
    return app


def _add_middleware(app, max_body_bytes: int, allowed_hosts) -> None:
    """Body limit, compression, security headers and, on a loopback address, the Host check."""
    from starlette.middleware.gzip import GZipMiddleware

    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=1024)  # model.js 313 -> 234 KB (base64), the page 3x smaller
    app.add_middleware(_SecurityHeaders)
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))


def _add_pages(app, script: str, report: bytes | None, info: dict) -> None:
    """What is the same for every request: the page and its files, model.js, the run's report,
    /api/health and /api/model (GET and HEAD)."""
    from fastapi.responses import FileResponse, Response
    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.api_route("/model.js", methods=["GET", "HEAD"], include_in_schema=False)
    def weights_script():
        return Response(script, media_type="text/javascript")

    @app.api_route("/favicon.ico", methods=["GET", "HEAD"], include_in_schema=False)
    def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    if report is not None:
        @app.api_route("/report", methods=["GET", "HEAD"], include_in_schema=False)
        def report_page():
            return Response(report, media_type="text/html")

    @app.get("/api/health")
    def health():
        return {"status": "ok"}
    app.add_api_route("/api/health", health, methods=["HEAD"], include_in_schema=False)  # load balancers' checks

    @app.get("/api/model", summary="What model is served")
    def model_endpoint() -> dict:
        return info


MAX_REPORT_BYTES = 32 * 2**20


def _report_of(checkpoint) -> bytes | None:
    """The bytes of the run's report.html (web.run_report finds it), served at /report; None
    when there is none, or it cannot be read."""
    from .._files import read_input
    from ..web import run_report

    path = run_report(checkpoint)
    if path is None:
        return None
    try:
        return read_input(path, MAX_REPORT_BYTES)
    except Exception:  # an unreadable report is not a reason not to serve the model
        log.warning("%s: not served (unreadable or over %d bytes)", path, MAX_REPORT_BYTES)
        return None


#: Swagger UI's page, made to pass axe-core where its template decides: a language, a main
#: landmark around the app, contrast of the version badges
DOCS_STYLE = ("<style>.swagger-ui .info .title small pre{color:#fff}.swagger-ui .info .title small{background:#3b4151}"
              ".swagger-ui .info .title small.version-stamp{background:#1d6b3a}"
              ".swagger-ui .info a.url,.swagger-ui .info .link{color:#1a5fd0}"
              ".swagger-ui .opblock.opblock-get .opblock-summary-method{background:#1a5fd0}"
              ".swagger-ui .opblock.opblock-post .opblock-summary-method{background:#1d6b3a}"
              ".swagger-ui .json-schema-2020-12-expand-deep-button{color:#595959}</style>")


#: Swagger UI keeps the multipart form's state when the body is switched back to JSON (the
#: editor showed {"image": {...}}): on a switch to JSON, this puts the operation's example there
DOCS_PLUGIN = """<script>
window.jsonExampleOnSwitch = () => ({ statePlugins: { oas3: { wrapActions: {
  setRequestContentType: (orig, system) => (args) => {
    const out = orig(args), [path, method] = args.pathMethod;
    if (args.value === "application/json") {
      const ex = system.specSelectors.specJson().getIn(
        ["paths", path, method, "requestBody", "content", "application/json", "example"]);
      if (ex) system.oas3Actions.setRequestBodyValue({ value: JSON.stringify(ex.toJS(), null, 2),
                                                      pathMethod: args.pathMethod });
    }
    return out;
  } } } } });
</script>"""


def _add_docs_and_links(app) -> None:
    """/api/docs (Swagger UI from local files), and the short paths people try: /docs and
    /openapi.json redirect to the real ones."""
    import re

    from fastapi import Request
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse, RedirectResponse

    @app.api_route("/api/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs(request: Request):
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}/api/openapi.json", title="mnist-logreg API",
            swagger_js_url=f"{root}/api/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/api/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/favicon.ico").body.decode()
        page = re.sub(r"<html>", '<html lang="en">', page, count=1).replace("</head>", DOCS_STYLE + "</head>", 1)
        page = re.sub(r'<div id="swagger-ui">\s*</div>', '<main><div id="swagger-ui"></div></main>' + DOCS_PLUGIN,
                      page, count=1)
        page = page.replace("presets: [", "plugins: [window.jsonExampleOnSwitch],\n    presets: [", 1)
        return HTMLResponse(page)

    for short, real in (("/docs", "/api/docs"), ("/openapi.json", "/api/openapi.json")):
        app.add_api_route(short, lambda real=real: RedirectResponse(real, status_code=308), methods=["GET", "HEAD"],
                          include_in_schema=False)


def _add_collect(app, folder: Path, limit, num_classes: int) -> None:
    """POST /api/examples: one correction from the page, saved in ``folder`` (a worker thread:
    the folder's lock may make it wait for another process)."""
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool

    from .. import examples
    from ..errors import ConfigError

    limit = examples.MAX_EXAMPLES if limit is None else limit

    @app.post("/api/examples", status_code=201, summary="Save a corrected example (serve --collect)",
              openapi_extra={"requestBody": EXAMPLE_BODY})
    async def save_example(request: Request):
        pixels, body = await _json_pixels(request)
        label = body.get("label")
        try:
            name = await run_in_threadpool(examples.add, folder, pixels, label, num_classes, limit)
        except examples.FolderFull as e:
            raise _Refusal(507, str(e)) from None
        except ConfigError as e:
            raise _Refusal(422, str(e)) from None
        return {"saved": name}


API_DESCRIPTION = ("Classify handwritten digits with one linear layer, honestly. Send an image (any format "
                   "Pillow reads: it is preprocessed the way MNIST was) or 784 pixels already in MNIST form. Every "
                   "answer has a state: `digit` (the calibrated probability of the top class is at least the "
                   "model's `sure_at`), `unsure` (between `label` and `runner_up`), `not-a-digit` (unlike the "
                   "images the model learned: `likeness` under `not_a_digit_below`), `too-small` or `blank` (no "
                   "label). `probabilities` are calibrated on held-out images; `likeness` is the share of held-out "
                   "training images less typical than this input. `?explain=true` adds the evidence map: for a "
                   "linear model the logit difference of two classes is exactly a sum over pixels.")

#: the two request forms of POST /api/predict, for the OpenAPI schema (the handler reads the
#: body itself, to bound its size and depth before parsing). JSON comes first: Swagger UI fills
#: the editor with the first form's example, and switching from multipart to JSON left its
#: form state ({"image": ...}) in the editor instead of the example.
PREDICT_BODY = {"required": True, "content": {
    "application/json": {"schema": {
        "type": "object", "required": ["pixels"],
        "properties": {"pixels": {
            "description": "784 numbers, or 28 rows of 28, in [0, 1] (or 0..255): light digit on black, "
                           "already in MNIST form",
            "oneOf": [{"type": "array", "items": {"type": "number"}, "minItems": 784, "maxItems": 784},
                      {"type": "array", "minItems": 28, "maxItems": 28,
                       "items": {"type": "array", "items": {"type": "number"}, "minItems": 28, "maxItems": 28}}]}}},
        "example": {"pixels": [0.0] * 784}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": {"type": "string", "format": "binary",
                                 "description": "a photo or drawing of one digit (PNG, JPEG, ...)"}}}}}}


#: POST /api/examples: the input the model read, and what it should have said
EXAMPLE_BODY = {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["pixels", "label"], "properties": {
        "pixels": {"description": "the 28x28 input the model read (784 numbers in [0, 1])",
                   "type": "array", "items": {"type": "number"}, "minItems": 784, "maxItems": 784},
        "label": {"type": "integer", "minimum": 0, "description": "the right class"}}},
    "example": {"pixels": [0.0] * 784, "label": 1}}}}


def _prediction_responses() -> dict:
    from typing import Literal, Optional

    from pydantic import BaseModel, Field

    from ..answers import STATES

    class Evidence(BaseModel):
        label: int = Field(description="the class explained (the answer)")
        against: int = Field(description="the class it is compared with (the runner-up)")
        bias: float = Field(description="bias[label] - bias[against]")
        logit_difference: float = Field(description="logit[label] - logit[against] = sum(map) + bias")
        map: list[list[float]] = Field(description="28x28: (W[label] - W[against]) * the input the model read")

    class Prediction(BaseModel):
        state: Literal[STATES] = Field(description="digit, unsure, not-a-digit, too-small or blank")
        label: Optional[int] = Field(description="the most probable class (for not-a-digit: the closest); null "
                                                 "for blank and too-small")
        class_name: Optional[str] = Field(description="its name")
        probability: Optional[float] = Field(description="its calibrated probability")
        runner_up: Optional[int] = Field(description="the second most probable class")
        probabilities: Optional[list[float]] = Field(description="calibrated, one per class, summing to 1")
        likeness: Optional[float] = Field(description="share of held-out training images less typical than this "
                                                      "one (null: the model has no likeness model)")
        message: str = Field(description="the answer in one line, for a person")
        preprocessed: Optional[list[list[float]]] = Field(description="the 28x28 input the model read, in [0, 1]")
        evidence: Optional[Evidence] = Field(None, description="with ?explain=true: why label and not runner_up")

    class Error(BaseModel):
        error: str = Field(description="what was wrong, in one line")

    errors = {400: "malformed body", 408: "the body stalled", 413: "body over the size limit",
              415: "neither multipart/form-data nor JSON", 422: "not an image, or bad pixels",
              503: "busy: retry after the Retry-After seconds"}
    return {200: {"model": Prediction, "description": "the answer"},
            **{code: {"model": Error, "description": text} for code, text in errors.items()}}


def _parse_json(raw: bytes):
    """The JSON value of a body whose nesting was checked first (json.loads recurses per level)."""
    if _depth(raw) > MAX_JSON_DEPTH:
        raise _Refusal(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _Refusal(400, "body is not valid JSON") from None


def _depth(raw: bytes) -> int:
    """How deep brackets nest in a JSON text (strings skipped), without parsing it: json.loads
    recurses once per level, so 10,000 levels would end in a RecursionError."""
    depth = top = 0
    in_string = escaped = False
    for c in raw:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            top = max(top, depth)
            if top > MAX_JSON_DEPTH:
                return top
        elif c in (0x5D, 0x7D):
            depth -= 1
    return top


def _pixels(body):
    """Validate JSON pixels: (error message or None, 28x28 float32 array)."""
    import numpy as np

    if not isinstance(body, dict) or "pixels" not in body:
        return "JSON body must be an object with a 'pixels' field (784 numbers or 28x28)", None
    px = body["pixels"]
    if not isinstance(px, list) or not px:
        return "'pixels' must be a list of 784 numbers or 28 rows of 28", None
    if all(isinstance(r, list) for r in px):
        if len(px) != 28 or any(len(r) != 28 for r in px):
            return "'pixels' as rows must be 28 rows of 28 numbers", None
        flat = [v for r in px for v in r]
    else:
        flat = px
    if len(flat) != 784:
        return f"'pixels' must hold 784 numbers, got {len(flat)}", None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        return "'pixels' must hold only numbers", None
    if any(isinstance(v, int) and not -1 <= v <= 256 for v in flat):  # 400 digits would overflow a float
        return "pixel values must be in [0, 1] (or 0..255)", None
    if not all(math.isfinite(v) for v in flat):
        return "'pixels' must be finite numbers (no NaN or infinity)", None
    arr = np.asarray(flat, dtype=np.float64)
    if arr.min() < 0 or arr.max() > 255:
        return "pixel values must be in [0, 1] (or 0..255)", None
    if arr.max() > 1:
        arr = arr / 255.0
    return None, arr.reshape(28, 28).astype(np.float32)


def snapshot_run(checkpoint) -> Path:
    """A private copy of the served checkpoint (and its run's report.html), in a fresh temporary
    folder (``serve`` removes it when it stops): every ``serve --workers`` process, and every worker
    uvicorn restarts, loads these bytes, the ones checked at start (a worker restarted after the
    file changed served the new model beside the old; a damaged file crash-looped them)."""
    import tempfile

    from .._files import read_input
    from ..checkpoint import MAX_CHECKPOINT_BYTES
    from ..runfolder import CHECKPOINT, REPORT

    src = Path(checkpoint)
    folder = src if src.is_dir() else None
    data = read_input(folder / CHECKPOINT if folder else src, MAX_CHECKPOINT_BYTES)
    snap = Path(tempfile.mkdtemp(prefix="mnist-logreg-serve-"))
    (snap / CHECKPOINT).write_bytes(data)
    report = _report_of(checkpoint)
    if report is not None:
        (snap / REPORT).write_bytes(report)
    return snap


def app_from_environment():
    """The app of one ``serve --workers N`` process: the checkpoint and body limit come from
    the environment the parent set (uvicorn imports this by name in each worker)."""
    import os

    import torch

    from .protocol import quiet_repeats

    torch.set_num_threads(1)
    quiet_repeats()
    return create_app(os.environ["MNIST_LOGREG_SERVE_CHECKPOINT"],
                      max_body_bytes=int(os.environ.get("MNIST_LOGREG_SERVE_MAX_BODY", DEFAULT_MAX_BODY)),
                      collect=os.environ.get("MNIST_LOGREG_SERVE_COLLECT") or None,
                      collect_max=int(os.environ.get("MNIST_LOGREG_SERVE_COLLECT_MAX", 10_000)),
                      allowed_hosts=[h for h in os.environ.get("MNIST_LOGREG_SERVE_HOSTS", "").split(",") if h] or None)
