//! The pages a taxpayer uses (issue 11): server-rendered HTML on the node's API address,
//! with no external resources and no JavaScript needed except where a page checks a
//! proof in the browser.
//!
//! | route | page |
//! | --- | --- |
//! | `GET /` | the verification form (票据代码, 票据号码, 校验码) |
//! | `GET /b/{code}/{number}/{check}` | the result: status, the bill, its timeline, the evidence |
//! | `GET /b/{code}/{number}/{check}/{digest}` | the same, from a QR code: says whether the bill matches the printed digest |
//! | `GET /b/{code}/{number}/{check}/qr.svg` | the QR code of the page |
//! | `GET /b/{code}/{number}/{check}/print` | a printable A5 bill with its QR code |
//! | `GET /verify` | the offline proof checker (bundle and genesis files dropped on it) |
//! | `GET /static/...` | the stylesheet and the verifier module, from the binary |
//!
//! The result URL with `Accept: application/json` answers the API's verdict JSON. The
//! same routes under `/B/` (the upper-case form a QR code carries) answer the same.
//! Chinese by default; English with `?lang=en` or an `Accept-Language` that prefers it.
//!
//! A wrong check code and an unknown bill give one 未查到 page, the same bytes but for
//! the numbers typed, after the same work ([`crate::verdict::find_bill`]). Every lookup
//! counts against the bill's daily and the client's per-minute limit
//! ([`lookup_limits`]).

pub mod capital;
pub mod lookup_limits;
pub mod pages;
pub mod qr;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ebill_types::receipt_link::{self, parse_digest};
use ebill_types::{BillCode, BillId, BillNumber, CheckCode, Hash32};
use serde::Deserialize;

use crate::error::{ApiError, codes, json};
use crate::routes::AppState;
use crate::verdict::find_bill;
use lookup_limits::{LookupCounters, LookupLimits, Refusal};
use pages::{BillPage, Evidence, FormErrors, FormValues, Lang};

/// Settings of the pages.
#[derive(Clone, Debug, Default)]
pub struct WebConfig {
    /// The node's public base URL (`--public-url`), which QR codes and printed links
    /// carry; without it, `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// The abuse limits.
    pub lookups: LookupLimits,
}

/// What the page handlers share.
#[derive(Debug)]
pub struct WebState {
    /// Settings.
    pub config: WebConfig,
    /// Lookup counters.
    pub counters: LookupCounters,
    /// The chain's genesis hash, shown on every page that checks a proof.
    pub genesis_hash: Hash32,
    /// QR tokens and drawn codes.
    pub qr: qr::QrImages,
}

impl WebState {
    /// The state for a node of genesis `genesis_hash`.
    pub fn new(config: WebConfig, genesis_hash: Hash32) -> Self {
        Self {
            counters: LookupCounters::new(&config.lookups),
            config,
            genesis_hash,
            qr: qr::QrImages::new(),
        }
    }
}

/// The client's address, set on each request by [`crate::server::serve_with`].
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// The stylesheet (screen and print).
pub const STYLE_CSS: &str = include_str!("assets/style.css");
/// The in-browser proof verifier (an ES module, no build step).
pub const VERIFY_JS: &str = include_str!("assets/verify.js");
/// The result page's glue: runs the verifier on the page's bill.
pub const PAGE_JS: &str = include_str!("assets/page.js");
/// The offline page's glue: reads the dropped files and runs the verifier.
pub const OFFLINE_JS: &str = include_str!("assets/offline.js");

/// Route paths.
pub mod paths {
    /// The form.
    pub const FORM: &str = "/";
    /// The offline checker.
    pub const VERIFY: &str = "/verify";
    /// A result.
    pub const RESULT: &str = "/b/{code}/{number}/{check}";
    /// A result from a QR code.
    pub const RESULT_DIGEST: &str = "/b/{code}/{number}/{check}/{digest}";
    /// A QR code.
    pub const QR: &str = "/b/{code}/{number}/{check}/qr.svg";
    /// A printable bill.
    pub const PRINT: &str = "/b/{code}/{number}/{check}/print";
    /// Upper-case forms (a QR code's).
    pub const RESULT_UPPER: &str = "/B/{code}/{number}/{check}";
    /// Upper-case form with a digest.
    pub const RESULT_DIGEST_UPPER: &str = "/B/{code}/{number}/{check}/{digest}";
    /// The stylesheet.
    pub const STYLE: &str = "/static/style.css";
    /// The verifier module.
    pub const VERIFY_MODULE: &str = "/static/verify.js";
    /// The result page's glue.
    pub const PAGE_MODULE: &str = "/static/page.js";

    /// Every template (for the latency histogram).
    pub const ALL: &[&str] = &[
        FORM,
        VERIFY,
        RESULT,
        RESULT_DIGEST,
        QR,
        PRINT,
        RESULT_UPPER,
        RESULT_DIGEST_UPPER,
        STYLE,
        VERIFY_MODULE,
        PAGE_MODULE,
    ];
}

/// The page routes over `state` (merged into the API's router).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(paths::FORM, get(form))
        .route(paths::VERIFY, get(offline))
        .route(paths::RESULT, get(result))
        .route(paths::RESULT_UPPER, get(result))
        .route(paths::RESULT_DIGEST, get(result_digest))
        .route(paths::RESULT_DIGEST_UPPER, get(result_digest))
        .route(paths::QR, get(qr_svg))
        .route(paths::PRINT, get(print))
        .route(paths::STYLE, get(|| async { asset("text/css", STYLE_CSS) }))
        .route(
            paths::VERIFY_MODULE,
            get(|| async { asset("text/javascript", VERIFY_JS) }),
        )
        .route(
            paths::PAGE_MODULE,
            get(|| async { asset("text/javascript", PAGE_JS) }),
        )
        .layer(axum::middleware::from_fn(security_headers))
}

/// The headers of every page: no referrer (a URL holds a check code), a policy of
/// resources from this node only, no MIME sniffing, no framing.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(pages::CSP),
        );
    }
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// An HTML answer; `no_store` for every page that holds a check code.
fn html(status: StatusCode, body: String, no_store: bool) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if no_store {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// `?lang=` of every page.
#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    /// `zh` or `en`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The page language: `?lang=`, else the first of zh/en in `Accept-Language` by
/// weight, else Chinese.
pub fn negotiate(lang: Option<&str>, headers: &HeaderMap) -> Lang {
    match lang {
        Some(l) if l.eq_ignore_ascii_case("en") => return Lang::En,
        Some(l) if l.eq_ignore_ascii_case("zh") => return Lang::Zh,
        _ => {}
    }
    let Some(accept) = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Lang::Zh;
    };
    let mut best: Option<(u32, Lang)> = None;
    for part in accept.split(',').take(16) {
        let mut it = part.split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let weight = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        let lang = if tag == "en" || tag.starts_with("en-") {
            Lang::En
        } else if tag == "zh" || tag.starts_with("zh-") || tag == "*" {
            Lang::Zh
        } else {
            continue;
        };
        if weight > 0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, lang));
        }
    }
    best.map_or(Lang::Zh, |(_, l)| l)
}

/// True if the request prefers JSON (`Accept: application/json` before any HTML).
fn wants_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for part in accept.split(',') {
        let essence = part.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            return true;
        }
        if essence.eq_ignore_ascii_case("text/html") {
            return false;
        }
    }
    false
}

/// The base URL links are built on.
fn public_base(st: &WebState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.config.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn client_ip(req_peer: Option<PeerAddr>) -> IpAddr {
    req_peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip())
}

/// The form's query: what was typed.
#[derive(Debug, Default, Deserialize)]
pub struct FormQuery {
    /// 票据代码.
    #[serde(default)]
    pub code: Option<String>,
    /// 票据号码.
    #[serde(default)]
    pub number: Option<String>,
    /// 校验码.
    #[serde(default)]
    pub check_code: Option<String>,
    /// `zh` or `en`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// The three numbers, parsed, or an error per field.
fn parse_fields(code: &str, number: &str, check: &str) -> Result<(BillId, CheckCode), FormErrors> {
    let code_r = BillCode::parse(code.trim());
    let number_r = BillNumber::parse(number.trim());
    let check_r = CheckCode::parse(&check.trim().to_ascii_lowercase());
    match (code_r, number_r, check_r) {
        (Ok(code), Ok(number), Ok(check)) => Ok((BillId { code, number }, check)),
        (c, n, k) => Err(FormErrors {
            code: c.err().map(|_| pages::field_error(code.trim(), 8, true)),
            number: n.err().map(|_| pages::field_error(number.trim(), 10, true)),
            check_code: k.err().map(|_| pages::field_error(check.trim(), 6, false)),
        }),
    }
}

fn lang_suffix(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "",
        Lang::En => "?lang=en",
    }
}

/// `GET /`: the form; with all three fields given and valid, a redirect to the result.
async fn form(headers: HeaderMap, Query(q): Query<FormQuery>) -> Response {
    let lang = negotiate(q.lang.as_deref(), &headers);
    let values = FormValues {
        code: q.code.clone().unwrap_or_default(),
        number: q.number.clone().unwrap_or_default(),
        check_code: q.check_code.clone().unwrap_or_default(),
    };
    if q.code.is_none() && q.number.is_none() && q.check_code.is_none() {
        let body = pages::form_page(lang, &values, &FormErrors::default());
        return html(StatusCode::OK, body, false);
    }
    match parse_fields(&values.code, &values.number, &values.check_code) {
        Ok((id, check)) => {
            let to = format!(
                "{}{}",
                receipt_link::page_path(&id, &check),
                lang_suffix(lang)
            );
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(errors) => html(
            StatusCode::BAD_REQUEST,
            pages::form_page(lang, &values, &errors),
            true,
        ),
    }
}

/// `GET /verify`: the offline checker.
async fn offline(headers: HeaderMap, Query(q): Query<LangQuery>) -> Response {
    let lang = negotiate(q.lang.as_deref(), &headers);
    let st_page = pages::VerifyPage::shared();
    let mut resp = html(StatusCode::OK, st_page.render(lang), false);
    if let Ok(v) = HeaderValue::from_str(&st_page.csp) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// What a result route was asked.
struct Asked {
    lang: Lang,
    typed: FormValues,
    parsed: Result<(BillId, CheckCode), FormErrors>,
}

fn asked(headers: &HeaderMap, q: &LangQuery, code: String, number: String, check: String) -> Asked {
    let lang = negotiate(q.lang.as_deref(), headers);
    let parsed = parse_fields(&code, &number, &check);
    Asked {
        lang,
        typed: FormValues {
            code,
            number,
            check_code: check,
        },
        parsed,
    }
}

/// The outcome of one counted lookup.
enum Looked {
    Found(Box<BillPage>),
    NotFound,
}

/// Counts the lookup, then finds the bill (the same work for an unknown bill and a
/// wrong check code) and gathers what its pages show.
fn look_up(
    st: &AppState,
    id: BillId,
    check: CheckCode,
    client: IpAddr,
    base: &str,
) -> Result<(Looked, u32), LookupFailure> {
    let web = &st.web;
    let count = web
        .counters
        .lookup(id, client, now_ms())
        .map_err(LookupFailure::Limited)?;
    let backend = &st.backend;
    let store = backend.store().as_ref();
    let found = find_bill(store, &st.decoys, &id, &check).map_err(LookupFailure::Api)?;
    let Some(found) = found else {
        return Ok((Looked::NotFound, count));
    };
    let genesis = backend.genesis();
    let verdict =
        crate::verdict::build_verdict(store, genesis, &found).map_err(LookupFailure::Api)?;
    let signers = match store.certificate(found.location.height) {
        Ok(Some(cert)) => cert
            .signatures
            .iter()
            .map(|s| {
                genesis
                    .validators
                    .get(s.validator as usize)
                    .map_or_else(|| format!("#{}", s.validator), |v| v.name.clone())
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            return Err(LookupFailure::Api(ApiError::internal(
                "reading a certificate",
                &e,
            )));
        }
    };
    let digest = receipt_link::bill_digest(&found.bill);
    let qr_url = receipt_link::qr_url(base, &id, &check, &digest);
    let qr_src = format!(
        "{}/qr.svg?d={digest}&t={}",
        receipt_link::page_path(&id, &check),
        web.qr.token(&qr_url)
    );
    Ok((
        Looked::Found(Box::new(BillPage {
            verdict,
            remark: found.bill.remark.clone(),
            evidence: Evidence {
                signers,
                validators: genesis.validators.len(),
                genesis_hash: web.genesis_hash,
                chain_id: genesis.chain_id.clone(),
            },
            digest,
            qr_url,
            qr_src,
            base: base.to_owned(),
            lookups_today: count,
            digest_asked: None,
        })),
        count,
    ))
}

enum LookupFailure {
    Limited(Refusal),
    Api(ApiError),
}

fn failure_response(f: LookupFailure, lang: Lang, json_wanted: bool) -> Response {
    match f {
        LookupFailure::Api(e) => e.into_response(),
        LookupFailure::Limited(r) => {
            let retry = r.retry_after_s();
            let mut resp = if json_wanted {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    codes::TOO_MANY_LOOKUPS,
                    match r {
                        Refusal::Client { .. } => {
                            "this address looked up too many bills this minute; retry later"
                        }
                        Refusal::Bill { .. } => {
                            "this bill was looked up too often today; retry tomorrow"
                        }
                    },
                )
                .into_response()
            } else {
                html(
                    StatusCode::TOO_MANY_REQUESTS,
                    pages::limited_page(lang, r),
                    true,
                )
            };
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry));
            resp
        }
    }
}

async fn result(
    State(st): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerAddr>>,
    Path((code, number, check)): Path<(String, String, String)>,
    Query(q): Query<LangQuery>,
) -> Response {
    render_result(
        &st,
        &headers,
        peer.map(|p| p.0),
        asked(&headers, &q, code, number, check),
        None,
    )
    .await
}

async fn result_digest(
    State(st): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerAddr>>,
    Path((code, number, check, digest)): Path<(String, String, String, String)>,
    Query(q): Query<LangQuery>,
) -> Response {
    let asked = asked(&headers, &q, code, number, check);
    // A malformed digest is one that matches no bill.
    let digest = parse_digest(&digest).unwrap_or_else(|| "?".repeat(8));
    render_result(&st, &headers, peer.map(|p| p.0), asked, Some(digest)).await
}

async fn render_result(
    st: &AppState,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    asked: Asked,
    digest_asked: Option<String>,
) -> Response {
    let json_wanted = wants_json(headers);
    let lang = asked.lang;
    let (id, check) = match asked.parsed {
        Ok(p) => p,
        Err(errors) => {
            if json_wanted {
                return ApiError::bad_request(
                    codes::INVALID_PATH,
                    "a bill code is 8 digits, a number 10 digits, a check code 6 characters of 0-9 and a-z",
                )
                .into_response();
            }
            return html(
                StatusCode::BAD_REQUEST,
                pages::form_page(lang, &asked.typed, &errors),
                true,
            );
        }
    };
    let base = public_base(&st.web, headers);
    let st2 = st.clone();
    let client = client_ip(peer);
    let looked = crate::routes::blocking(move || Ok(look_up(&st2, id, check, client, &base))).await;
    let looked = match looked {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    match looked {
        Err(f) => failure_response(f, lang, json_wanted),
        Ok((Looked::NotFound, _)) => {
            if json_wanted {
                let mut r = ApiError::bill_not_found().into_response();
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return r;
            }
            html(
                StatusCode::NOT_FOUND,
                pages::not_found_page(lang, &asked.typed),
                true,
            )
        }
        Ok((Looked::Found(mut page), _)) => {
            if json_wanted {
                let mut r = json(StatusCode::OK, &page.verdict);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return r;
            }
            page.digest_asked = digest_asked;
            html(StatusCode::OK, pages::result_page(lang, &page), true)
        }
    }
}

/// The QR code and print routes: one counted lookup, then the QR or the A5 page; an
/// unknown bill and a wrong check code answer the same 未查到 page.
async fn qr_or_print(
    st: &AppState,
    headers: &HeaderMap,
    peer: Option<PeerAddr>,
    asked: Asked,
    print: bool,
) -> Response {
    let lang = asked.lang;
    let Ok((id, check)) = asked.parsed else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::form_page(lang, &asked.typed, &FormErrors::default()),
            true,
        );
    };
    let base = public_base(&st.web, headers);
    let st2 = st.clone();
    let client = client_ip(peer);
    let looked =
        match crate::routes::blocking(move || Ok(look_up(&st2, id, check, client, &base))).await {
            Ok(l) => l,
            Err(e) => return e.into_response(),
        };
    match looked {
        Err(f) => failure_response(f, lang, false),
        Ok((Looked::NotFound, _)) => html(
            StatusCode::NOT_FOUND,
            pages::not_found_page(lang, &asked.typed),
            true,
        ),
        Ok((Looked::Found(page), _)) if print => {
            html(StatusCode::OK, pages::print_page(lang, &page), true)
        }
        Ok((Looked::Found(page), _)) => svg_response(&st.web, &page.qr_url),
    }
}

fn svg_response(web: &WebState, url: &str) -> Response {
    match web.qr.svg(url) {
        Ok(svg) => {
            let mut resp = (StatusCode::OK, svg.as_str().to_owned()).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => ApiError::internal("drawing a QR code", &e).into_response(),
    }
}

/// `?d=DIGEST&t=TOKEN&lang=` of the QR route.
#[derive(Debug, Default, Deserialize)]
pub struct QrQuery {
    /// The bill's digest, as the page that linked the code knew it.
    #[serde(default)]
    pub d: Option<String>,
    /// The page's token for the code's link ([`qr::QrImages::token`]).
    #[serde(default)]
    pub t: Option<String>,
    /// `zh` or `en`.
    #[serde(default)]
    pub lang: Option<String>,
}

/// `GET .../qr.svg`: with the token of a page this node served, the code of that
/// page's link, drawn without a lookup (nothing is read, so nothing is told); without
/// one, a counted lookup like the page's.
async fn qr_svg(
    State(st): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerAddr>>,
    Path((code, number, check)): Path<(String, String, String)>,
    Query(q): Query<QrQuery>,
) -> Response {
    let lang_q = LangQuery { lang: q.lang };
    let asked = asked(&headers, &lang_q, code, number, check);
    if let (Ok((id, check)), Some(d), Some(t)) = (&asked.parsed, q.d, q.t)
        && let Some(digest) = parse_digest(&d)
    {
        let url = receipt_link::qr_url(&public_base(&st.web, &headers), id, check, &digest);
        if st.web.qr.verify(&url, &t) {
            return svg_response(&st.web, &url);
        }
    }
    qr_or_print(&st, &headers, peer.map(|p| p.0), asked, false).await
}

async fn print(
    State(st): State<AppState>,
    headers: HeaderMap,
    peer: Option<axum::Extension<PeerAddr>>,
    Path((code, number, check)): Path<(String, String, String)>,
    Query(q): Query<LangQuery>,
) -> Response {
    let asked = asked(&headers, &q, code, number, check);
    qr_or_print(&st, &headers, peer.map(|p| p.0), asked, true).await
}

/// The state the page routes need, made once per router.
pub(crate) fn state(config: WebConfig, genesis_hash: Hash32) -> Arc<WebState> {
    Arc::new(WebState::new(config, genesis_hash))
}
