//! The HTML of the pages (maud: templates checked at compile time, every value escaped).
//! Chinese first; every page also in English.

use std::sync::OnceLock;

use base64ct::{Base64, Encoding as _};
use ebill_types::{BillKind, Hash32};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

use super::capital::capital_amount;
use super::lookup_limits::Refusal;
use crate::verdict::Verdict;

/// The Content-Security-Policy of every page: scripts, styles, images and fetches from
/// this node only; no plugins, no framing, forms post back here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A page's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 简体中文 (the default).
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The text in this language.
    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        self.t("zh-CN", "en")
    }

    fn query(self) -> &'static str {
        self.t("", "?lang=en")
    }
}

/// What was typed in the form.
#[derive(Clone, Debug, Default)]
pub struct FormValues {
    /// 票据代码 as typed.
    pub code: String,
    /// 票据号码 as typed.
    pub number: String,
    /// 校验码 as typed.
    pub check_code: String,
}

/// What is wrong with one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldError {
    /// Nothing typed.
    Empty,
    /// Characters other than the field takes.
    WrongCharacters,
    /// The wrong number of characters.
    WrongLength {
        /// How many were typed.
        got: usize,
        /// How many the field takes.
        want: usize,
    },
}

/// The error of a field given what was typed.
pub fn field_error(typed: &str, want: usize, digits_only: bool) -> FieldError {
    let ok_char = |c: char| {
        if digits_only {
            c.is_ascii_digit()
        } else {
            c.is_ascii_alphanumeric()
        }
    };
    if typed.is_empty() {
        FieldError::Empty
    } else if !typed.chars().all(ok_char) {
        FieldError::WrongCharacters
    } else {
        FieldError::WrongLength {
            got: typed.chars().count(),
            want,
        }
    }
}

/// Errors per field.
#[derive(Clone, Debug, Default)]
pub struct FormErrors {
    /// Of 票据代码.
    pub code: Option<FieldError>,
    /// Of 票据号码.
    pub number: Option<FieldError>,
    /// Of 校验码.
    pub check_code: Option<FieldError>,
}

fn error_text(lang: Lang, e: FieldError, digits_only: bool) -> String {
    match (lang, e) {
        (Lang::Zh, FieldError::Empty) => "请填写此项".into(),
        (Lang::En, FieldError::Empty) => "Please fill this in".into(),
        (Lang::Zh, FieldError::WrongCharacters) if digits_only => "只能填写数字".into(),
        (Lang::En, FieldError::WrongCharacters) if digits_only => "Digits only".into(),
        (Lang::Zh, FieldError::WrongCharacters) => "只能填写数字和字母".into(),
        (Lang::En, FieldError::WrongCharacters) => "Digits and letters only".into(),
        (Lang::Zh, FieldError::WrongLength { got, want }) => {
            format!("应为 {want} 位，填写了 {got} 位")
        }
        (Lang::En, FieldError::WrongLength { got, want }) => {
            format!("{want} characters needed, {got} typed")
        }
    }
}

/// The evidence panel's facts.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// Names of the validators whose precommits certify the bill's block.
    pub signers: Vec<String>,
    /// Validators in the genesis.
    pub validators: usize,
    /// The genesis hash.
    pub genesis_hash: Hash32,
    /// The chain id.
    pub chain_id: String,
}

/// Everything a result page of a found bill shows.
#[derive(Clone, Debug)]
pub struct BillPage {
    /// The API's verdict.
    pub verdict: Verdict,
    /// The bill's remark.
    pub remark: String,
    /// The evidence panel.
    pub evidence: Evidence,
    /// The bill's digest ([`receipt_link::bill_digest`]).
    pub digest: String,
    /// The QR code's link.
    pub qr_url: String,
    /// The QR image's address (`qr.svg?d=..&t=..`).
    pub qr_src: String,
    /// The public base URL.
    pub base: String,
    /// Lookups of this bill today, this one included.
    pub lookups_today: u32,
    /// The digest the link carried, if it came from a QR code.
    pub digest_asked: Option<String>,
}

fn kind_name(lang: Lang, kind: BillKind) -> &'static str {
    match kind {
        BillKind::NonTaxPayment => lang.t("非税收入一般缴款书", "Non-tax revenue payment notice"),
        BillKind::NonTaxGeneral => lang.t("非税收入通用票据", "Non-tax revenue general bill"),
        BillKind::NonTaxSpecial => lang.t("非税收入专用票据", "Non-tax revenue special bill"),
        BillKind::FundSettlement => lang.t(
            "行政事业单位资金往来结算票据",
            "Public institution fund settlement bill",
        ),
        BillKind::Donation => lang.t("公益事业捐赠票据", "Public welfare donation bill"),
        BillKind::MembershipFee => lang.t("社会团体会费票据", "Membership fee bill"),
        BillKind::MedicalOutpatient => lang.t("医疗收费票据（门诊）", "Medical bill (outpatient)"),
        BillKind::MedicalInpatient => lang.t("医疗收费票据（住院）", "Medical bill (inpatient)"),
        BillKind::MedicalOther => lang.t("医疗收费票据（其他）", "Medical bill (other)"),
    }
}

fn action_name(lang: Lang, action: &str) -> &'static str {
    match action {
        "issue_bill" => lang.t("开具", "Issued"),
        "lock" => lang.t("锁定（报销中）", "Locked for reimbursement"),
        "unlock" => lang.t("解除锁定", "Unlocked"),
        "confirm_reimbursed" => lang.t("已报销入账", "Reimbursed"),
        "red_reverse" => lang.t("冲红", "Red-reversed"),
        "exchange_paper" => lang.t("换开纸质票据", "Exchanged for paper"),
        _ => lang.t("其他", "Other"),
    }
}

/// A credit code as the public sees a unit other than the issuer: first 4 and last 4.
fn mask_code(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..4].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 8));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// `t` shown in the offset of `like` (block times are UTC; a bill's page shows them in
/// the issuer's offset).
fn in_offset(t: &ebill_types::Timestamp, like: &ebill_types::Timestamp) -> ebill_types::Timestamp {
    ebill_types::Timestamp {
        unix_ms: t.unix_ms,
        offset_min: like.offset_min,
    }
}

/// A time as shown: `2026-12-01 10:30:00 +08:00`.
fn show_time(ts: &ebill_types::Timestamp) -> String {
    let s = ts.to_string();
    match s.split_once('T') {
        Some((d, rest)) => {
            let (t, off) = rest.split_at(rest.find(['+', '-', 'Z']).unwrap_or(rest.len()));
            let off = if off == "Z" { "UTC" } else { off };
            format!("{d} {} {off}", t.split('.').next().unwrap_or(t))
        }
        None => s,
    }
}

fn layout(lang: Lang, title: &str, body: Markup, script: Option<&str>) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href="/static/style.css";
                @if let Some(src) = script {
                    script type="module" src=(src) {}
                }
            }
            body {
                header.top {
                    a.brand href={ "/" (lang.query()) } {
                        (lang.t("财政电子票据查验", "Fiscal e-bill verification"))
                    }
                    nav.lang {
                        a href="?lang=zh" lang="zh-CN" { "中文" }
                        " | "
                        a href="?lang=en" lang="en" { "English" }
                    }
                }
                main { (body) }
                footer.bottom {
                    p { (lang.t(
                        "本页由 ebill 节点根据链上已确认的区块生成；技术证据可离线复核。",
                        "Served by an ebill node from final blocks; the evidence can be checked offline."
                    )) }
                }
            }
        }
    }
    .into_string()
}

/// The picture of where the three numbers sit on a bill.
fn where_picture(lang: Lang) -> Markup {
    html! {
        svg.where_ viewBox="0 0 320 150" role="img" aria-label=(lang.t("票据上三项号码的位置", "Where the three numbers are on a bill")) {
            rect x="2" y="2" width="316" height="146" rx="6" fill="#fffdf5" stroke="#b33" stroke-width="2" {}
            text x="160" y="26" text-anchor="middle" font-size="14" fill="#b33" { (lang.t("财政电子票据", "Fiscal e-bill")) }
            rect.field x="12" y="38" width="136" height="22" rx="3" fill="#fde2e2" stroke="#b33" {}
            text x="18" y="54" font-size="11" fill="#222" { (lang.t("① 票据代码 8 位", "① Code, 8 digits")) }
            rect.field x="172" y="38" width="136" height="22" rx="3" fill="#fde2e2" stroke="#b33" {}
            text x="178" y="54" font-size="11" fill="#222" { (lang.t("② 票据号码 10 位", "② Number, 10 digits")) }
            rect.field x="172" y="66" width="136" height="22" rx="3" fill="#fde2e2" stroke="#b33" {}
            text x="178" y="82" font-size="11" fill="#222" { (lang.t("③ 校验码 6 位", "③ Check code, 6")) }
            rect x="12" y="96" width="228" height="8" fill="#ddd" {}
            rect x="12" y="112" width="190" height="8" fill="#ddd" {}
            rect x="12" y="128" width="150" height="8" fill="#ddd" {}
            rect x="262" y="96" width="46" height="46" fill="none" stroke="#222" {}
            text x="285" y="123" text-anchor="middle" font-size="10" fill="#222" { "QR" }
        }
    }
}

fn field(
    lang: Lang,
    name: &str,
    label: &str,
    value: &str,
    error: Option<FieldError>,
    len: usize,
    digits_only: bool,
) -> Markup {
    let id_err = format!("{name}-error");
    let pattern = if digits_only {
        format!("[0-9]{{{len}}}")
    } else {
        format!("[0-9A-Za-z]{{{len}}}")
    };
    let hint = if digits_only {
        lang.t("位数字", "digits")
    } else {
        lang.t("位数字或字母", "digits or letters")
    };
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value) required
                inputmode=(if digits_only { "numeric" } else { "text" })
                pattern=(pattern) maxlength=(len) minlength=(len)
                autocomplete="off" autocapitalize="off" spellcheck="false"
                aria-describedby=(id_err) aria-invalid=(if error.is_some() { "true" } else { "false" });
            small.hint { (len) " " (hint) }
            @if let Some(e) = error {
                p.error id=(id_err) role="alert" { (error_text(lang, e, digits_only)) }
            } @else {
                p.error id=(id_err) {}
            }
        }
    }
}

/// `GET /`: the form, with what was typed and an error per field.
pub fn form_page(lang: Lang, v: &FormValues, e: &FormErrors) -> String {
    let body = html! {
        h1 { (lang.t("查验财政电子票据", "Verify a fiscal e-bill")) }
        p.lead { (lang.t(
            "输入票据上的票据代码、票据号码和校验码，查看票据是否真实、是否已报销或冲红。",
            "Type the code, number and check code printed on the bill to see whether it is genuine and whether it was reimbursed or reversed."
        )) }
        div.formwrap {
            form.verify method="get" action="/" novalidate[false] {
                @if lang == Lang::En { input type="hidden" name="lang" value="en"; }
                (field(lang, "code", lang.t("票据代码", "Bill code"), &v.code, e.code, 8, true))
                (field(lang, "number", lang.t("票据号码", "Bill number"), &v.number, e.number, 10, true))
                (field(lang, "check_code", lang.t("校验码", "Check code"), &v.check_code, e.check_code, 6, false))
                button type="submit" { (lang.t("查验", "Verify")) }
            }
            figure.where_ {
                (where_picture(lang))
                figcaption { (lang.t("三项号码在票据上方；也可扫描票据上的二维码。", "The numbers are at the top of the bill; or scan its QR code.")) }
            }
        }
        p.offline { a href={ "/verify" (lang.query()) } { (lang.t("离线核验证明文件", "Check a proof file offline")) } }
    };
    layout(
        lang,
        lang.t("查验财政电子票据", "Verify a fiscal e-bill"),
        body,
        None,
    )
}

/// The one page for an unknown bill and for a wrong check code: only the numbers typed
/// differ.
pub fn not_found_page(lang: Lang, v: &FormValues) -> String {
    let body = html! {
        div.banner.status-none role="status" {
            strong { (lang.t("未查到", "Not found")) @if lang == Lang::Zh { " " small.en lang="en" { "Not found" } } }
            span { (lang.t(
                "没有与这三项号码相符的票据。请核对票据代码、票据号码和校验码。",
                "No bill has this code, number and check code. Please check the three numbers."
            )) }
        }
        table.kv {
            tr { th { (lang.t("票据代码", "Bill code")) } td { (v.code) } }
            tr { th { (lang.t("票据号码", "Bill number")) } td { (v.number) } }
            tr { th { (lang.t("校验码", "Check code")) } td { (v.check_code) } }
        }
        p { a href={ "/" (lang.query()) } { (lang.t("重新查验", "Try again")) } }
    };
    layout(lang, lang.t("未查到", "Not found"), body, None)
}

/// 429: over a lookup limit.
pub fn limited_page(lang: Lang, r: Refusal) -> String {
    let (title, text) = match r {
        Refusal::Client { .. } => (
            lang.t("查验过于频繁", "Too many lookups"),
            lang.t(
                "您的网络地址在一分钟内查验次数过多，请稍后再试。",
                "Your address looked up too many bills this minute. Please wait and try again.",
            ),
        ),
        Refusal::Bill { .. } => (
            lang.t("该票据今日查验次数已达上限", "This bill was checked too often today"),
            lang.t(
                "为防止滥用，每张票据每天可查验的次数有限，请明天再试。",
                "To prevent abuse each bill may be checked a limited number of times a day. Please try again tomorrow.",
            ),
        ),
    };
    let body = html! {
        div.banner.status-limited role="status" {
            strong { (title) }
            span { (text) }
        }
        p { (lang.t("可在以下秒数后重试：", "Retry after (seconds): ")) (r.retry_after_s()) }
    };
    layout(lang, title, body, None)
}

fn banner(lang: Lang, v: &Verdict) -> Markup {
    let last = |action: &str| v.history.iter().rev().find(|h| h.action == action);
    let (class, title, detail) = match v.status.as_str() {
        "issued" => (
            "status-ok",
            lang.t("真实有效", "Genuine"),
            lang.t(
                "票据已上链，尚未报销。",
                "The bill is on chain and not reimbursed.",
            ),
        ),
        "locked" => (
            "status-locked",
            lang.t("已锁定", "Locked"),
            lang.t(
                "票据真实，正由一家单位办理报销。",
                "Genuine, and being reimbursed by a unit.",
            ),
        ),
        "reimbursed" => (
            "status-reimbursed",
            lang.t("已报销", "Reimbursed"),
            lang.t(
                "票据真实，已经报销入账，不能再次报销。",
                "Genuine, and already reimbursed: it cannot be reimbursed again.",
            ),
        ),
        "reversed" => (
            "status-reversed",
            lang.t("已冲红", "Red-reversed"),
            lang.t(
                "开票单位已将此票据冲红作废。",
                "The issuer reversed (voided) this bill.",
            ),
        ),
        "paper_exchanged" => (
            "status-paper",
            lang.t("已换开纸质", "Exchanged for paper"),
            lang.t(
                "此票据已换开为纸质票据，电子票据不能再用于报销。",
                "Exchanged for a paper bill: the e-bill can no longer be reimbursed.",
            ),
        ),
        _ => ("status-none", lang.t("未知状态", "Unknown status"), ""),
    };
    let by = match v.status.as_str() {
        "reimbursed" => last("confirm_reimbursed"),
        "locked" => last("lock"),
        _ => None,
    };
    let english = match v.status.as_str() {
        "issued" => "Genuine",
        "locked" => "Locked",
        "reimbursed" => "Reimbursed",
        "reversed" => "Red-reversed",
        "paper_exchanged" => "Exchanged for paper",
        _ => "Unknown status",
    };
    html! {
        div class={ "banner " (class) } role="status" {
            strong { (title) @if lang == Lang::Zh { " " small.en lang="en" { (english) } } }
            span { (detail) }
            @if let Some(h) = by {
                span.by {
                    (lang.t("单位 ", "Unit ")) (mask_code(h.by.as_str()))
                    " · " (show_time(&in_offset(&h.time, &v.issued_at)))
                }
            }
        }
    }
}

fn bill_table(lang: Lang, p: &BillPage) -> Markup {
    let v = &p.verdict;
    html! {
        section.bill {
            h2 { (kind_name(lang, v.kind)) }
            table.kv {
                tr { th { (lang.t("票据代码", "Bill code")) } td.num { (v.code) } }
                tr { th { (lang.t("票据号码", "Bill number")) } td.num { (v.number) } }
                tr { th { (lang.t("校验码", "Check code")) } td.num { (v.check_code) } }
                tr { th { (lang.t("开票日期", "Issued at")) } td { (show_time(&v.issued_at)) } }
                tr { th { (lang.t("开票单位", "Issuer")) } td { (v.issuer.name) br; small.num { (v.issuer.credit_code) } } }
                tr { th { (lang.t("交款人", "Payer")) } td { (v.payer.name) " " small.num { (v.payer.id) } } }
            }
            table.items {
                thead { tr {
                    th { (lang.t("项目编码", "Code")) }
                    th { (lang.t("项目名称", "Item")) }
                    th.r { (lang.t("数量", "Qty")) }
                    th { (lang.t("单位", "Unit")) }
                    th.r { (lang.t("单价", "Price")) }
                    th.r { (lang.t("金额（元）", "Amount (yuan)")) }
                } }
                tbody {
                    @for item in &v.items {
                        tr {
                            td.num { (item.code) }
                            td { (item.name) }
                            td.r { (item.quantity) }
                            td { (item.unit) }
                            td.r { (item.unit_price) }
                            td.r { (item.amount) }
                        }
                    }
                }
                tfoot {
                    tr.total {
                        th colspan="2" { (lang.t("合计（小写）", "Total (figures)")) }
                        td.r colspan="4" { "¥" (v.total) }
                    }
                    tr.total {
                        th colspan="2" { (lang.t("合计（大写）", "Total (in words)")) }
                        td.r.capital colspan="4" { "人民币" (capital_amount(v.total.0)) }
                    }
                }
            }
            @if !p.remark.is_empty() {
                p.remark { (lang.t("备注：", "Remark: ")) (p.remark) }
            }
        }
    }
}

fn timeline(lang: Lang, v: &Verdict) -> Markup {
    html! {
        section.timeline {
            h2 { (lang.t("票据记录", "Timeline")) }
            ol {
                @for h in &v.history {
                    li {
                        strong { (action_name(lang, &h.action)) }
                        " · " (show_time(&in_offset(&h.time, &v.issued_at)))
                        " · " (lang.t("区块高度 ", "height ")) (h.height)
                        @if h.action != "issue_bill" {
                            " · " (lang.t("单位 ", "unit ")) (mask_code(h.by.as_str()))
                        }
                    }
                }
            }
        }
    }
}

fn qr_figure(lang: Lang, p: &BillPage) -> Markup {
    html! {
        figure.qr {
            img src=(p.qr_src) width="170" height="170" alt=(lang.t("本票据的查验二维码", "QR code of this bill's page"));
            figcaption {
                (lang.t("扫码查验本票据", "Scan to verify this bill"))
                br;
                small.num.url { (p.qr_url) }
            }
        }
    }
}

fn digest_line(lang: Lang, p: &BillPage) -> Markup {
    html! {
        @if let Some(asked) = &p.digest_asked {
            @if *asked == p.digest {
                p.digest.ok { (lang.t("✓ 二维码所载摘要与本票据内容一致：", "✓ The QR code's digest matches this bill: ")) span.num { (p.digest) } }
            } @else {
                p.digest.bad role="alert" { (lang.t(
                    "✗ 二维码所载摘要与链上票据内容不符：打印件可能被改动，请以本页内容为准。",
                    "✗ The QR code's digest does not match the bill on chain: the printout may have been altered; trust this page."
                )) " " span.num { (asked) " ≠ " (p.digest) } }
            }
        }
    }
}

fn evidence(lang: Lang, p: &BillPage) -> Markup {
    let v = &p.verdict;
    let e = &p.evidence;
    let proof = format!(
        "/v1/bills/{}/{}/proof?check_code={}",
        v.code, v.number, v.check_code
    );
    let file = format!("{}-{}.proof.json", v.code, v.number);
    html! {
        details.evidence {
            summary { (lang.t("技术证据 / Evidence", "Evidence / 技术证据")) }
            table.kv {
                tr { th { (lang.t("交易 ID", "Transaction id")) } td.hash { (v.tx_id) } }
                tr { th { (lang.t("区块高度", "Block height")) } td { (v.height) } }
                tr { th { (lang.t("区块哈希", "Block hash")) } td.hash { (v.block_hash) } }
                tr { th { (lang.t("签名验证节点", "Validators who signed")) } td {
                    (e.signers.len()) " / " (e.validators) ": " (e.signers.join(", "))
                } }
                tr { th { (lang.t("链 ID", "Chain id")) } td { (e.chain_id) } }
                tr { th { (lang.t("创世哈希", "Genesis hash")) } td.hash { (e.genesis_hash) } }
                tr { th { (lang.t("票据摘要", "Bill digest")) } td.num { (p.digest) } }
            }
            p {
                a href=(proof) download=(file) { (lang.t("下载证明文件（JSON）", "Download the proof bundle (JSON)")) }
                " · "
                a href={ (proof) "&format=binary" } download={ (v.code) "-" (v.number) ".proof" } { (lang.t("二进制格式", "binary")) }
                " · "
                a href="/v1/genesis" download="genesis.json" { (lang.t("创世文件", "genesis file")) }
            }
            p { (lang.t("离线复核命令：", "Check it offline with:")) }
            pre { code { "ebill verify-proof " (file) " --genesis genesis.json" } }
            div #proof-check
                data-bundle=(proof)
                data-genesis="/v1/genesis"
                data-genesis-hash=(e.genesis_hash)
                data-code=(v.code) data-number=(v.number) data-check=(v.check_code)
                data-lang=(lang.code()) {
                button #verify-button type="button" { (lang.t("在本浏览器中验证证明", "Verify the proof in this browser")) }
                output #verify-result aria-live="polite" {}
                noscript { (lang.t("（需要启用 JavaScript）", "(needs JavaScript)")) }
            }
        }
    }
}

/// The result page of a found bill.
pub fn result_page(lang: Lang, p: &BillPage) -> String {
    let v = &p.verdict;
    let path = format!("/b/{}/{}/{}", v.code, v.number, v.check_code);
    let body = html! {
        (banner(lang, v))
        (digest_line(lang, p))
        div.sheet {
            (bill_table(lang, p))
            (qr_figure(lang, p))
        }
        (timeline(lang, v))
        p.count { (lang.t("今日查验次数：", "Checked today: ")) strong { (p.lookups_today) } }
        (evidence(lang, p))
        p.links.noprint {
            a href={ (path) "/print" (lang.query()) } { (lang.t("打印票据（A5）", "Print (A5)")) }
            " · "
            a href={ (path) "/qr.svg" } { (lang.t("二维码图片", "QR code image")) }
            " · "
            a href={ "/" (lang.query()) } { (lang.t("查验其他票据", "Verify another bill")) }
        }
    };
    layout(
        lang,
        lang.t("票据查验结果", "Verification result"),
        body,
        Some("/static/page.js"),
    )
}

/// The printable A5 bill.
pub fn print_page(lang: Lang, p: &BillPage) -> String {
    let body = html! {
        div.print-sheet {
            (banner(lang, &p.verdict))
            div.sheet {
                (bill_table(lang, p))
                (qr_figure(lang, p))
            }
            p.small { (lang.t("查验网址：", "Verify at: ")) span.num { (p.base) } }
        }
    };
    layout(lang, lang.t("打印票据", "Print bill"), body, None)
}

/// The offline checker page: everything inline (script, style), so that the page saved
/// as one file works with no network.
#[derive(Debug)]
pub struct VerifyPage {
    inline_js: String,
    /// The page's own Content-Security-Policy: the inline script and style by hash.
    pub csp: String,
}

fn csp_hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        Base64::encode_string(&Sha256::digest(text.as_bytes()))
    )
}

impl VerifyPage {
    /// Built once per process.
    pub fn shared() -> &'static VerifyPage {
        static PAGE: OnceLock<VerifyPage> = OnceLock::new();
        PAGE.get_or_init(|| {
            // The verifier module inlined: its `export`s dropped, the page glue after.
            let verifier = super::VERIFY_JS.replace("export async function", "async function")
                .replace("export function", "function")
                .replace("export const", "const")
                .replace("export class", "class");
            let inline_js = format!("{verifier}\n{}", super::OFFLINE_JS);
            let csp = format!(
                "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                csp_hash(&inline_js),
                csp_hash(super::STYLE_CSS)
            );
            VerifyPage { inline_js, csp }
        })
    }

    /// The page in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    title { (lang.t("离线核验证明文件", "Check a proof offline")) }
                    style { (PreEscaped(super::STYLE_CSS)) }
                }
                body {
                    main {
                        h1 { (lang.t("离线核验证明文件", "Check a proof bundle offline")) }
                        p.lead { (lang.t(
                            "把证明文件（.proof.json）和创世文件（genesis.json）拖到下面，或选择文件。核验完全在本浏览器中进行，不联网；可将本页另存为一个文件保存使用。",
                            "Drop the proof bundle (.proof.json) and the genesis file (genesis.json) below, or pick them. The check runs entirely in this browser with no network; this page can be saved as one file and kept."
                        )) }
                        div #drop.drop data-lang=(lang.code()) {
                            p { (lang.t("拖放文件到此处", "Drop files here")) }
                            label { (lang.t("证明文件：", "Proof bundle: ")) input #bundle-file type="file" accept=".json,application/json"; }
                            br;
                            label { (lang.t("创世文件：", "Genesis file: ")) input #genesis-file type="file" accept=".json,application/json"; }
                        }
                        output #verify-result aria-live="polite" {}
                    }
                    script { (PreEscaped(&self.inline_js)) }
                }
            }
        }
        .into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_what_is_wrong() {
        assert_eq!(field_error("", 8, true), FieldError::Empty);
        assert_eq!(field_error("12a", 8, true), FieldError::WrongCharacters);
        assert_eq!(
            field_error("123", 8, true),
            FieldError::WrongLength { got: 3, want: 8 }
        );
        assert_eq!(
            error_text(Lang::Zh, FieldError::WrongLength { got: 3, want: 8 }, true),
            "应为 8 位，填写了 3 位"
        );
    }

    #[test]
    fn the_not_found_page_differs_only_in_the_numbers_typed() {
        let a = not_found_page(
            Lang::Zh,
            &FormValues {
                code: "33010126".into(),
                number: "0000000001".into(),
                check_code: "abcdef".into(),
            },
        );
        let b = not_found_page(
            Lang::Zh,
            &FormValues {
                code: "33010126".into(),
                number: "0000000002".into(),
                check_code: "zzzzzz".into(),
            },
        );
        assert_eq!(
            a.replace("0000000001", "N").replace("abcdef", "C"),
            b.replace("0000000002", "N").replace("zzzzzz", "C")
        );
    }

    #[test]
    fn times_are_shown_plainly() {
        let ts = ebill_types::Timestamp::parse("2026-12-01T10:30:00+08:00")
            .unwrap_or_else(|_| ebill_types::Timestamp::from_unix_ms(0));
        assert_eq!(show_time(&ts), "2026-12-01 10:30:00 +08:00");
        assert_eq!(mask_code("91330100MA0000002X"), "9133**********002X");
    }
}
