//! The OpenAPI 3.1 document of the API, served at `GET /v1/openapi.json`.
//!
//! Written here, next to the routes, and held against them so that it cannot drift:
//!
//! - the path templates are the constants of [`crate::routes::paths`], and the tests of
//!   this module check that the document has exactly the (path, method) pairs the router
//!   serves ([`crate::routes::served`]), no more, no fewer;
//! - the enumeration of error codes is built from the code lists themselves
//!   ([`crate::error::codes::ALL`], [`ebill_ledger::ErrorCode::ALL`],
//!   [`crate::backend::AdmissionCode::ALL`]), as are the enumerations of transaction
//!   kinds, bill kinds, proposal statuses and the limits;
//! - `tests/e2e/schemathesis.rs` runs schemathesis against a dev node with this document
//!   and checks every answer's status, content type and body against it.
//!
//! The taxpayers' HTML pages ([`crate::web::paths`]) are not part of this contract: they
//! are for people, are described in the crate README, and may change their markup freely.

use std::sync::LazyLock;

use ebill_ledger::{ErrorCode, ProposalStatus};
use ebill_types::{BillKind, TxKind};
use serde_json::{Map, Value, json};

use crate::backend::AdmissionCode;
use crate::error::codes;
use crate::limits::{MAX_BATCH_BODY_BYTES, MAX_BATCH_TXS, MAX_TX_BODY_BYTES};
use crate::routes::gov::MAX_LISTED_PROPOSALS;
use crate::routes::paths;

/// The document, serialised once.
pub static DOCUMENT_JSON: LazyLock<Vec<u8>> = LazyLock::new(|| {
    // A `Value` always serialises.
    serde_json::to_vec(&document()).unwrap_or_default()
});

/// Every error code the API can answer, sorted and without repeats.
pub fn all_error_codes() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = codes::ALL
        .iter()
        .copied()
        .chain(ErrorCode::ALL.iter().map(|c| c.as_str()))
        .chain(AdmissionCode::ALL.iter().map(|c| c.as_str()))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn response_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn json_answer(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } }
    })
}

/// The error answers every route may give besides its own: a failure inside the node
/// and load shedding.
fn with_common_errors(mut responses: Map<String, Value>) -> Value {
    responses
        .entry("500")
        .or_insert_with(|| response_ref("Internal"));
    responses
        .entry("503")
        .or_insert_with(|| response_ref("Unavailable"));
    Value::Object(responses)
}

fn responses(pairs: Vec<(&str, Value)>) -> Value {
    with_common_errors(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": schema
    })
}

fn query_param(name: &str, required: bool, description: &str, schema: Value) -> Value {
    json!({
        "name": name, "in": "query", "required": required,
        "description": description, "schema": schema
    })
}

fn wait_param() -> Value {
    query_param(
        "wait",
        false,
        "`commit`: answer only once the transaction is final (bounded by the node's \
         wait timeout, 30 s by default).",
        json!({ "type": "string", "enum": ["commit"] }),
    )
}

fn bill_params(check_code_required: bool) -> Vec<Value> {
    vec![
        path_param("code", "The bill code: 8 digits.", schema_ref("BillCode")),
        path_param(
            "number",
            "The bill number: 10 digits.",
            schema_ref("BillNumber"),
        ),
        query_param(
            "check_code",
            check_code_required,
            "The bill's check code (6 characters of 0-9 and a-z). Without it: 400 \
             `missing_check_code`.",
            schema_ref("CheckCode"),
        ),
    ]
}

fn json_body(schema: Value, max_bytes: usize) -> Value {
    json!({
        "required": true,
        "description": format!(
            "JSON, sent with `Content-Type: application/json`, at most {max_bytes} bytes. \
             Parsed strictly: unknown or missing fields, a key given twice and money as a \
             JSON number are `400 invalid_json`."
        ),
        "content": { "application/json": { "schema": schema } }
    })
}

fn body_errors(mut pairs: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
    pairs.push(("400", response_ref("BadRequest")));
    pairs.push(("413", response_ref("TooLarge")));
    pairs.push(("415", response_ref("UnsupportedMediaType")));
    pairs.push(("408", response_ref("BodyTimeout")));
    pairs
}

/// The answers to a submitted transaction's rejection.
fn rejection_errors(mut pairs: Vec<(&'static str, Value)>) -> Vec<(&'static str, Value)> {
    for (status, what) in [
        (
            "403",
            "The signer may not do this (`unit_revoked`, `wrong_role`, ...).",
        ),
        (
            "409",
            "Conflicts with the committed state (`bill_exists`, `duplicate_tx`, ...).",
        ),
        (
            "422",
            "Well-formed but semantically invalid (`bad_signature`, `unknown_issuer`, ...).",
        ),
        (
            "504",
            "`?wait=commit` ran out of time (`timeout`, with `tx_id`): it may still commit.",
        ),
    ] {
        pairs.push((status, json_answer(what, schema_ref("Error"))));
    }
    pairs
}

fn get_op(id: &str, summary: &str, params: Vec<Value>, responses: Value) -> Value {
    json!({ "get": {
        "operationId": id, "summary": summary, "parameters": params, "responses": responses
    }})
}

fn paths_object() -> Value {
    let mut p = Map::new();
    let mut put = |path: &str, item: Value| {
        p.insert(path.to_owned(), item);
    };
    put(
        paths::TXS,
        json!({ "post": {
            "operationId": "submitTx",
            "summary": "Submit one signed transaction.",
            "parameters": [wait_param()],
            "requestBody": json_body(schema_ref("SignedTx"), MAX_TX_BODY_BYTES),
            "responses": responses(rejection_errors(body_errors(vec![
                ("202", json_answer("Admitted to the mempool, not final yet.", schema_ref("TxAnswer"))),
                ("200", json_answer("With `?wait=commit`: final.", schema_ref("TxAnswer"))),
            ]))),
        }}),
    );
    put(
        paths::TXS_BATCH,
        json!({ "post": {
            "operationId": "submitBatch",
            "summary": format!(
                "Submit up to {MAX_BATCH_TXS} signed transactions; each item is parsed and \
                 answered on its own, in order."
            ),
            "parameters": [wait_param()],
            "requestBody": json_body(schema_ref("BatchRequest"), MAX_BATCH_BODY_BYTES),
            "responses": responses(body_errors(vec![
                ("202", json_answer("Per-item results.", schema_ref("BatchAnswer"))),
                ("200", json_answer(
                    "With `?wait=commit`: per-item results after one deadline for the batch.",
                    schema_ref("BatchAnswer"))),
            ])),
        }}),
    );
    put(
        paths::TX,
        get_op(
            "txStatus",
            "Where a transaction stands.",
            vec![path_param(
                "id",
                "The transaction id: 64 lowercase hex digits.",
                schema_ref("Hash32"),
            )],
            responses(vec![
                (
                    "200",
                    json_answer("Pending, committed or rejected.", schema_ref("TxAnswer")),
                ),
                ("400", response_ref("BadRequest")),
                ("404", json_answer("`tx_not_found`.", schema_ref("Error"))),
            ]),
        ),
    );
    put(
        paths::BILL,
        get_op(
            "billVerdict",
            "A bill's verdict: authentic, final, status, contents (payer masked), history.",
            bill_params(true),
            responses(vec![
                ("200", json_answer("The verdict.", schema_ref("Verdict"))),
                ("400", response_ref("BadRequest")),
                ("404", response_ref("BillNotFound")),
            ]),
        ),
    );
    let mut proof_params = bill_params(true);
    proof_params.push(query_param(
        "format",
        false,
        "`json` (the default) or `binary` (the compact canonical bytes, \
         docs/spec/proof-bundle.md).",
        json!({ "type": "string", "enum": ["json", "binary"] }),
    ));
    proof_params.push(query_param(
        "version",
        false,
        "`3` (the default: with the witnesses' co-signatures of the state checkpoint) or \
         `2` (the same bundle without them, for verifiers that read versions 1 and 2).",
        json!({ "type": "integer", "enum": [2, 3] }),
    ));
    put(
        paths::BILL_PROOF,
        get_op(
            "billProof",
            "A bill's proof bundle, to verify offline against the genesis alone.",
            proof_params,
            responses(vec![
                (
                    "200",
                    json!({
                        "description": "The bundle: JSON, or with `format=binary` its canonical bytes.",
                        "content": {
                            "application/json": { "schema": schema_ref("ProofBundle") },
                            "application/octet-stream": {
                                "schema": { "type": "string", "contentMediaType": "application/octet-stream" }
                            }
                        }
                    }),
                ),
                ("400", response_ref("BadRequest")),
                ("404", response_ref("BillNotFound")),
            ]),
        ),
    );
    put(
        paths::VERIFY,
        json!({ "post": {
            "operationId": "verifyBillFile",
            "summary": "Verify a signed bill file (the bill plus `signature` and `check_code`).",
            "requestBody": json_body(schema_ref("SignedBill"), MAX_TX_BODY_BYTES),
            "responses": responses(body_errors(vec![
                ("200", json_answer(
                    "The verdict if the file is the committed bill; otherwise what differs.",
                    json!({ "oneOf": [schema_ref("Verdict"), schema_ref("NotAuthentic")] }))),
                ("404", response_ref("BillNotFound")),
            ])),
        }}),
    );
    put(
        paths::BLOCK_LATEST,
        get_op(
            "latestBlock",
            "The last final block.",
            vec![],
            responses(vec![
                ("200", json_answer("The block.", schema_ref("Block"))),
                (
                    "404",
                    json_answer("`block_not_found`: no block yet.", schema_ref("Error")),
                ),
            ]),
        ),
    );
    put(
        paths::BLOCK,
        get_op(
            "blockByHeight",
            "A final block by height.",
            vec![path_param(
                "height",
                "Decimal height, 1 or more (0 is the genesis: `GET /v1/genesis`).",
                json!({ "type": "integer", "minimum": 1 }),
            )],
            responses(vec![
                ("200", json_answer("The block.", schema_ref("Block"))),
                ("400", response_ref("BadRequest")),
                (
                    "404",
                    json_answer("`block_not_found`.", schema_ref("Error")),
                ),
            ]),
        ),
    );
    put(
        paths::GENESIS,
        get_op(
            "genesis",
            "The genesis document (docs/spec/genesis.md).",
            vec![],
            responses(vec![(
                "200",
                json_answer("The genesis.", schema_ref("Genesis")),
            )]),
        ),
    );
    put(
        paths::STATUS,
        get_op(
            "status",
            "The node's status.",
            vec![],
            responses(vec![("200", json_answer("Status.", schema_ref("Status")))]),
        ),
    );
    put(
        paths::HEALTHZ,
        get_op(
            "healthz",
            "Liveness: the store can be read.",
            vec![],
            responses(vec![(
                "200",
                json_answer(
                    "Alive.",
                    json!({
                        "type": "object",
                        "required": ["ok", "height"],
                        "properties": {
                            "ok": { "const": true },
                            "height": { "type": "integer", "minimum": 0 }
                        }
                    }),
                ),
            )]),
        ),
    );
    put(
        paths::METRICS,
        get_op(
            "metrics",
            "Prometheus metrics (the OpenMetrics text format).",
            vec![],
            responses(vec![(
                "200",
                json!({
                    "description": "The metrics.",
                    "content": { "application/openmetrics-text": { "schema": { "type": "string" } } }
                }),
            )]),
        ),
    );
    put(
        paths::OPENAPI,
        get_op(
            "openapi",
            "This document.",
            vec![],
            responses(vec![(
                "200",
                json_answer("OpenAPI 3.1.", json!({ "type": "object" })),
            )]),
        ),
    );
    put(
        paths::CHECKPOINT_LATEST,
        get_op(
            "latestCheckpoint",
            "The newest checkpoint co-signed by a regulator's observer, with its header, \
             validator certificate and every co-signature, and the conflicts this node has seen.",
            vec![],
            responses(vec![
                (
                    "200",
                    json_answer("The checkpoint.", schema_ref("CheckpointAnswer")),
                ),
                (
                    "404",
                    json_answer("`checkpoint_not_found`.", schema_ref("Error")),
                ),
            ]),
        ),
    );
    put(
        paths::GOV_PROPOSALS,
        get_op(
            "listProposals",
            "Governance proposals, newest first, with their status at the next height.",
            vec![query_param(
                "status",
                false,
                "Only proposals in this status.",
                json!({ "type": "string", "enum": ProposalStatus::ALL.map(|s| s.as_str()) }),
            )],
            responses(vec![
                (
                    "200",
                    json_answer("The proposals.", schema_ref("ProposalList")),
                ),
                ("400", response_ref("BadRequest")),
            ]),
        ),
    );
    put(
        paths::GOV_PROPOSAL,
        get_op(
            "showProposal",
            "One proposal.",
            vec![path_param(
                "id",
                "The proposal id: 64 lowercase hex digits.",
                schema_ref("Hash32"),
            )],
            responses(vec![
                (
                    "200",
                    json_answer("The proposal.", schema_ref("ProposalAnswer")),
                ),
                ("400", response_ref("BadRequest")),
                (
                    "404",
                    json_answer("`proposal_not_found`.", schema_ref("Error")),
                ),
            ]),
        ),
    );
    put(
        paths::UNITS,
        get_op(
            "listUnits",
            "The registry of units.",
            vec![],
            responses(vec![(
                "200",
                json_answer("Every unit.", schema_ref("UnitList")),
            )]),
        ),
    );
    put(
        paths::UNIT,
        get_op(
            "showUnit",
            "One unit, its registry history and a proof of its record in the state tree.",
            vec![path_param(
                "credit_code",
                "The unit's unified social credit code (18 characters).",
                schema_ref("CreditCode"),
            )],
            responses(vec![
                ("200", json_answer("The unit.", schema_ref("UnitAnswer"))),
                ("400", response_ref("BadRequest")),
                ("404", json_answer("`unit_not_found`.", schema_ref("Error"))),
            ]),
        ),
    );
    Value::Object(p)
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

/// [`object`] that refuses other fields (for request bodies, parsed strictly).
fn strict_object(required: &[&str], properties: Value) -> Value {
    let mut o = object(required, properties);
    o["additionalProperties"] = json!(false);
    o
}

fn hex(len: usize, description: &str) -> Value {
    json!({
        "type": "string", "pattern": format!("^[0-9a-f]{{{len}}}$"),
        "description": description
    })
}

fn array_of(item: Value) -> Value {
    json!({ "type": "array", "items": item })
}

fn uint() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

fn primitive_schemas(s: &mut Map<String, Value>) {
    s.insert("Hash32".into(), hex(64, "A SHA-256 hash, lowercase hex."));
    s.insert(
        "PublicKey".into(),
        hex(64, "An Ed25519 public key, lowercase hex."),
    );
    s.insert(
        "Signature".into(),
        hex(128, "An Ed25519 signature, lowercase hex."),
    );
    s.insert(
        "HexBytes".into(),
        json!({ "type": "string", "pattern": "^([0-9a-f]{2})*$", "description": "Bytes, lowercase hex." }),
    );
    s.insert(
        "Timestamp".into(),
        json!({ "type": "string", "format": "date-time", "description": "RFC 3339, millisecond precision at most." }),
    );
    s.insert(
        "Money".into(),
        json!({ "type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$", "description": "Yuan with two decimals (\"12.50\"): never a JSON number." }),
    );
    s.insert(
        "Quantity".into(),
        json!({ "type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,4})?$", "description": "A decimal with up to 4 fraction digits." }),
    );
    s.insert(
        "CreditCode".into(),
        json!({ "type": "string", "pattern": "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$",
                "description": "A unified social credit code (GB 32100-2015), its check character valid." }),
    );
    s.insert(
        "BillCode".into(),
        json!({ "type": "string", "pattern": "^[0-9]{8}$" }),
    );
    s.insert(
        "BillNumber".into(),
        json!({ "type": "string", "pattern": "^[0-9]{10}$" }),
    );
    s.insert(
        "CheckCode".into(),
        json!({ "type": "string", "pattern": "^[0-9a-z]{6}$" }),
    );
    s.insert(
        "CodePrefix".into(),
        json!({ "type": "string", "pattern": "^[0-9]{1,8}$" }),
    );
    s.insert(
        "BillKind".into(),
        json!({ "type": "string", "enum": BillKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>() }),
    );
    s.insert(
        "TxKind".into(),
        json!({ "type": "string", "enum": TxKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>() }),
    );
    s.insert(
        "BillStatus".into(),
        json!({ "type": "string", "enum": ["issued", "locked", "reimbursed", "reversed", "paper_exchanged"] }),
    );
}

/// The fields of a transaction body of `kind` besides `type` (not `issue_bill`, whose
/// fields are the bill's): required names and property schemas. Exhaustive, so that a new
/// kind does not compile until the document describes it.
fn tx_body_fields(kind: TxKind) -> (Vec<&'static str>, Value) {
    let bill = || schema_ref("BillId");
    let code = || schema_ref("CreditCode");
    let text = || json!({ "type": "string" });
    let key = || schema_ref("PublicKey");
    let prefixes = || array_of(schema_ref("CodePrefix"));
    let proposal = || json!({ "proposal": schema_ref("Hash32") });
    match kind {
        TxKind::IssueBill => (vec![], json!({})),
        TxKind::RedReverse => (
            vec!["issuer", "bill", "reason"],
            json!({ "issuer": code(), "bill": bill(), "reason": text() }),
        ),
        TxKind::ExchangePaper => (
            vec!["issuer", "bill"],
            json!({ "issuer": code(), "bill": bill() }),
        ),
        TxKind::Lock | TxKind::ConfirmReimbursed => (
            vec!["unit", "bill", "check_code"],
            json!({ "unit": code(), "bill": bill(), "check_code": schema_ref("CheckCode") }),
        ),
        TxKind::Unlock => (
            vec!["unit", "bill"],
            json!({ "unit": code(), "bill": bill() }),
        ),
        TxKind::RegisterIssuer => (
            vec![
                "credit_code",
                "name",
                "public_key",
                "code_prefixes",
                "valid_until",
            ],
            json!({
                "credit_code": code(), "name": text(), "public_key": key(),
                "code_prefixes": prefixes(), "valid_until": schema_ref("Timestamp")
            }),
        ),
        TxKind::RegisterReimburser => (
            vec!["credit_code", "name", "public_key"],
            json!({ "credit_code": code(), "name": text(), "public_key": key() }),
        ),
        TxKind::RevokeUnit => (
            vec!["credit_code", "reason"],
            json!({ "credit_code": code(), "reason": text() }),
        ),
        TxKind::RotateKey => (
            vec!["credit_code", "public_key"],
            json!({ "credit_code": code(), "public_key": key() }),
        ),
        TxKind::SetPrefixes => (
            vec!["credit_code", "code_prefixes"],
            json!({ "credit_code": code(), "code_prefixes": prefixes() }),
        ),
        TxKind::RenewQualification => (
            vec!["credit_code", "valid_until"],
            json!({ "credit_code": code(), "valid_until": schema_ref("Timestamp") }),
        ),
        TxKind::AddRegulator => (
            vec!["name", "public_key"],
            json!({ "name": text(), "public_key": key() }),
        ),
        TxKind::RemoveRegulator => (vec!["public_key"], json!({ "public_key": key() })),
        TxKind::SetThreshold => (vec!["threshold"], json!({ "threshold": uint() })),
        TxKind::Propose => (
            vec!["action", "expires_at_height", "base_gov_seq"],
            json!({
                "action": schema_ref("TxBody"), "expires_at_height": uint(), "base_gov_seq": uint()
            }),
        ),
        TxKind::Approve | TxKind::Reject | TxKind::Withdraw => (vec!["proposal"], proposal()),
    }
}

fn bill_schemas(s: &mut Map<String, Value>) {
    s.insert(
        "BillId".into(),
        object(
            &["code", "number"],
            json!({ "code": schema_ref("BillCode"), "number": schema_ref("BillNumber") }),
        ),
    );
    s.insert(
        "Payer".into(),
        object(
            &["type", "name", "id"],
            json!({
                "type": { "type": "string", "enum": ["person", "unit"] },
                "name": { "type": "string" },
                "id": { "type": "string", "description": "An identity number, or a unit's credit code." }
            }),
        ),
    );
    s.insert(
        "Item".into(),
        object(
            &["code", "name", "quantity", "unit", "unit_price", "amount"],
            json!({
                "code": { "type": "string" }, "name": { "type": "string" },
                "quantity": schema_ref("Quantity"), "unit": { "type": "string" },
                "unit_price": schema_ref("Money"), "amount": schema_ref("Money")
            }),
        ),
    );
    let bill_props = json!({
        "code": schema_ref("BillCode"), "number": schema_ref("BillNumber"),
        "kind": schema_ref("BillKind"), "issuer": schema_ref("CreditCode"),
        "issued_at": schema_ref("Timestamp"), "payer": schema_ref("Payer"),
        "items": array_of(schema_ref("Item")), "total": schema_ref("Money"),
        "currency": { "type": "string", "enum": ["CNY"] },
        "remark": { "type": "string" }, "related": schema_ref("BillId"),
    });
    let bill_required = [
        "code",
        "number",
        "kind",
        "issuer",
        "issued_at",
        "payer",
        "items",
        "total",
        "currency",
    ];
    let mut signed_props = bill_props.clone();
    signed_props["signature"] = schema_ref("Signature");
    signed_props["check_code"] = schema_ref("CheckCode");
    let mut signed_required = bill_required.to_vec();
    signed_required.extend(["signature", "check_code"]);
    s.insert(
        "SignedBill".into(),
        strict_object(&signed_required, signed_props),
    );
    let bodies: Vec<Value> = TxKind::ALL
        .iter()
        .map(|&kind| {
            let (required, mut props) = match kind {
                TxKind::IssueBill => (bill_required.to_vec(), bill_props.clone()),
                other => tx_body_fields(other),
            };
            props["type"] = json!({ "const": kind.as_str() });
            let mut required = required;
            required.insert(0, "type");
            strict_object(&required, props)
        })
        .collect();
    s.insert(
        "TxBody".into(),
        json!({
            "description": "What a transaction does: `type` names the kind, the other fields are \
                the kind's (docs/spec/transaction.md); `issue_bill` carries the bill's fields.",
            "oneOf": bodies
        }),
    );
    s.insert(
        "SignedTx".into(),
        strict_object(
            &["tx", "auth"],
            json!({
                "tx": strict_object(&["nonce", "body"], json!({
                    "nonce": uint(), "body": schema_ref("TxBody")
                })),
                "auth": {
                    "description": "A unit's signature, or regulators' signatures (strictly increasing indices).",
                    "oneOf": [
                        strict_object(&["unit"], json!({ "unit": schema_ref("Signature") })),
                        strict_object(&["regulators"], json!({ "regulators": array_of(
                            strict_object(&["index", "signature"], json!({
                                "index": uint(), "signature": schema_ref("Signature")
                            }))
                        )})),
                    ]
                }
            }),
        ),
    );
    s.insert(
        "BatchRequest".into(),
        strict_object(
            &["txs"],
            json!({ "txs": {
                "type": "array", "items": { "description": "A SignedTx; a malformed item is an error in its slot." }
            }}),
        ),
    );
}

fn answer_schemas(s: &mut Map<String, Value>) {
    s.insert(
        "Error".into(),
        object(
            &["error"],
            json!({ "error": object(&["code", "message"], json!({
                "code": { "type": "string", "enum": all_error_codes(),
                          "description": "Stable; codes are added, never renamed." },
                "message": { "type": "string" },
                "tx_id": schema_ref("Hash32")
            }))}),
        ),
    );
    s.insert(
        "TxAnswer".into(),
        object(
            &["tx_id", "status"],
            json!({
                "tx_id": schema_ref("Hash32"),
                "status": { "type": "string", "enum": ["pending", "committed", "rejected"] },
                "height": uint(), "index": uint(),
                "code": { "type": "string", "description": "Rejection code (`rejected`)." },
                "message": { "type": "string" }
            }),
        ),
    );
    s.insert(
        "BatchAnswer".into(),
        object(
            &["results", "accepted", "rejected"],
            json!({
                "results": array_of(json!({ "oneOf": [
                    schema_ref("TxAnswer"),
                    object(&["error"], json!({
                        "tx_id": schema_ref("Hash32"),
                        "error": object(&["code", "message"], json!({
                            "code": { "type": "string" }, "message": { "type": "string" }
                        }))
                    })),
                ]})),
                "accepted": uint(), "rejected": uint(),
                "committed": uint(), "pending": uint()
            }),
        ),
    );
    s.insert(
        "Verdict".into(),
        object(
            &[
                "authentic",
                "final",
                "status",
                "code",
                "number",
                "check_code",
                "kind",
                "issuer",
                "total",
                "currency",
                "issued_at",
                "payer",
                "items",
                "height",
                "block_hash",
                "tx_id",
                "history",
            ],
            json!({
                "authentic": { "const": true }, "final": { "type": "boolean" },
                "status": schema_ref("BillStatus"),
                "code": schema_ref("BillCode"), "number": schema_ref("BillNumber"),
                "check_code": schema_ref("CheckCode"), "kind": schema_ref("BillKind"),
                "issuer": object(&["credit_code", "name"], json!({
                    "credit_code": schema_ref("CreditCode"), "name": { "type": "string" }
                })),
                "total": schema_ref("Money"), "currency": { "type": "string", "enum": ["CNY"] },
                "issued_at": schema_ref("Timestamp"),
                "payer": schema_ref("Payer"),
                "items": array_of(schema_ref("Item")),
                "height": uint(), "block_hash": schema_ref("Hash32"), "tx_id": schema_ref("Hash32"),
                "history": array_of(object(&["action", "by", "height", "time", "tx_id"], json!({
                    "action": schema_ref("TxKind"), "by": schema_ref("CreditCode"),
                    "height": uint(), "time": schema_ref("Timestamp"), "tx_id": schema_ref("Hash32")
                })))
            }),
        ),
    );
    s.insert(
        "NotAuthentic".into(),
        object(
            &[
                "authentic",
                "final",
                "code",
                "number",
                "reason",
                "message",
                "differing_fields",
                "on_chain_tx_id",
            ],
            json!({
                "authentic": { "const": false }, "final": { "const": false },
                "code": schema_ref("BillCode"), "number": schema_ref("BillNumber"),
                "reason": { "type": "string", "enum": ["content_mismatch", "signature_mismatch", "check_code_mismatch"] },
                "message": { "type": "string" },
                "differing_fields": array_of(json!({ "type": "string" })),
                "on_chain_tx_id": schema_ref("Hash32")
            }),
        ),
    );
    s.insert(
        "Status".into(),
        object(
            &[
                "chain_id",
                "genesis_hash",
                "height",
                "tip_hash",
                "role",
                "peers",
                "syncing",
            ],
            json!({
                "chain_id": { "type": "string" }, "genesis_hash": schema_ref("Hash32"),
                "height": uint(), "tip_hash": nullable(schema_ref("Hash32")),
                "role": { "type": "string", "enum": ["validator", "observer"] },
                "peers": uint(), "syncing": { "type": "boolean" }
            }),
        ),
    );
}

fn chain_schemas(s: &mut Map<String, Value>) {
    let header = json!({
        "chain_id": { "type": "string" }, "height": uint(), "prev_hash": schema_ref("Hash32"),
        "proposer": uint(), "tx_root": schema_ref("Hash32"), "tx_count": uint(),
        "validator_set_hash": schema_ref("Hash32"), "state_root": schema_ref("Hash32"),
    });
    let header_fields = [
        "chain_id",
        "height",
        "prev_hash",
        "proposer",
        "tx_root",
        "tx_count",
        "validator_set_hash",
        "state_root",
    ];
    let mut header_props = header.clone();
    header_props["time_ms"] = uint();
    let mut header_required = header_fields.to_vec();
    header_required.push("time_ms");
    s.insert("BlockHeader".into(), object(&header_required, header_props));
    s.insert(
        "CommitCertificate".into(),
        object(
            &["height", "round", "block", "signatures"],
            json!({
                "height": uint(), "round": uint(), "block": schema_ref("Hash32"),
                "signatures": array_of(object(&["validator", "signature"], json!({
                    "validator": uint(), "signature": schema_ref("Signature")
                })))
            }),
        ),
    );
    let mut block_props = header;
    block_props["hash"] = schema_ref("Hash32");
    block_props["time"] = schema_ref("Timestamp");
    block_props["tx_ids"] = array_of(schema_ref("Hash32"));
    block_props["certificate"] = nullable(schema_ref("CommitCertificate"));
    let mut block_required = header_fields.to_vec();
    block_required.extend(["hash", "time", "tx_ids", "certificate"]);
    s.insert("Block".into(), object(&block_required, block_props));
    s.insert(
        "ProofBundle".into(),
        object(
            &["version", "chain_id", "genesis_hash", "bill", "entries"],
            json!({
                "version": uint(), "chain_id": { "type": "string" },
                "genesis_hash": schema_ref("Hash32"), "bill": schema_ref("BillId"),
                "entries": array_of(object(&["tx", "proof", "header", "certificate"], json!({
                    "tx": schema_ref("SignedTx"),
                    "proof": object(&["leaf_index", "tree_size", "path"], json!({
                        "leaf_index": uint(), "tree_size": uint(),
                        "path": array_of(schema_ref("Hash32"))
                    })),
                    "header": schema_ref("BlockHeader"),
                    "certificate": schema_ref("CommitCertificate")
                }))),
                "state": object(&["header", "certificate", "record", "proof"], json!({
                    "header": schema_ref("BlockHeader"),
                    "certificate": schema_ref("CommitCertificate"),
                    "record": schema_ref("HexBytes"), "proof": schema_ref("HexBytes")
                })),
                "witnesses": array_of(schema_ref("Cosignature"))
            }),
        ),
    );
    s.insert(
        "Cosignature".into(),
        object(
            &["key_id", "signature"],
            json!({ "key_id": hex(8, "A witness key id (docs/spec/checkpoint.md)."),
                    "signature": schema_ref("Signature") }),
        ),
    );
    let checkpoint = object(
        &["chain_id", "height", "block_hash", "state_root"],
        json!({ "chain_id": { "type": "string" }, "height": uint(),
                "block_hash": schema_ref("Hash32"), "state_root": schema_ref("Hash32") }),
    );
    let cosigned = object(
        &["checkpoint", "final_here", "cosignatures"],
        json!({ "checkpoint": checkpoint.clone(), "final_here": { "type": "boolean" },
                "cosignatures": array_of(schema_ref("Cosignature")) }),
    );
    s.insert(
        "CheckpointAnswer".into(),
        object(
            &["checkpoint", "header", "certificate", "cosignatures", "witnesses_in_genesis",
              "tip_height", "conflicts", "conflicts_dropped"],
            json!({
                "checkpoint": checkpoint,
                "header": schema_ref("BlockHeader"),
                "certificate": schema_ref("CommitCertificate"),
                "cosignatures": array_of(object(
                    &["key_id", "signature", "observer", "observer_key", "regulator", "regulator_key"],
                    json!({ "key_id": hex(8, "The witness key id."), "signature": schema_ref("Signature"),
                            "observer": { "type": "string" }, "observer_key": schema_ref("PublicKey"),
                            "regulator": { "type": "string" }, "regulator_key": schema_ref("PublicKey") }),
                )),
                "witnesses_in_genesis": uint(),
                "tip_height": uint(),
                "conflicts": array_of(object(&["height", "first", "second"], json!({
                    "height": uint(), "first": cosigned.clone(), "second": cosigned
                }))),
                "conflicts_dropped": uint()
            }),
        ),
    );
    let named_key = object(
        &["name", "public_key"],
        json!({ "name": { "type": "string" }, "public_key": schema_ref("PublicKey") }),
    );
    s.insert("NamedKey".into(), named_key);
    s.insert(
        "Regulators".into(),
        object(
            &["threshold", "keys"],
            json!({ "threshold": uint(), "keys": array_of(schema_ref("NamedKey")) }),
        ),
    );
    s.insert(
        "Genesis".into(),
        object(
            &[
                "chain_id",
                "genesis_time",
                "params",
                "validators",
                "observers",
                "regulators",
                "issuers",
                "reimbursers",
            ],
            json!({
                "chain_id": { "type": "string" }, "genesis_time": schema_ref("Timestamp"),
                "params": object(&[
                    "max_block_txs", "max_block_bytes", "max_tx_bytes", "issue_window_past_ms",
                    "issue_window_future_ms", "max_amount_fen", "max_item_quantity",
                ], json!({
                    "max_block_txs": uint(), "max_block_bytes": uint(), "max_tx_bytes": uint(),
                    "issue_window_past_ms": uint(), "issue_window_future_ms": uint(),
                    "max_amount_fen": uint(), "max_item_quantity": uint()
                })),
                "validators": array_of(schema_ref("NamedKey")),
                "observers": array_of(object(&["name", "public_key"], json!({
                    "name": { "type": "string" }, "public_key": schema_ref("PublicKey"),
                    "regulator": schema_ref("PublicKey")
                }))),
                "regulators": schema_ref("Regulators"),
                "issuers": array_of(object(&["credit_code", "name", "public_key", "code_prefixes"], json!({
                    "credit_code": schema_ref("CreditCode"), "name": { "type": "string" },
                    "public_key": schema_ref("PublicKey"),
                    "code_prefixes": array_of(schema_ref("CodePrefix")),
                    "valid_until": schema_ref("Timestamp")
                }))),
                "reimbursers": array_of(object(&["credit_code", "name", "public_key"], json!({
                    "credit_code": schema_ref("CreditCode"), "name": { "type": "string" },
                    "public_key": schema_ref("PublicKey"), "valid_until": schema_ref("Timestamp")
                })))
            }),
        ),
    );
}

fn registry_schemas(s: &mut Map<String, Value>) {
    let regulator = object(
        &["index", "name", "public_key"],
        json!({ "index": uint(), "name": { "type": "string" }, "public_key": schema_ref("PublicKey") }),
    );
    s.insert("RegulatorView".into(), regulator);
    let vote = object(
        &["regulator", "height", "tx_id"],
        json!({
            "regulator": schema_ref("RegulatorView"), "height": uint(), "tx_id": schema_ref("Hash32")
        }),
    );
    s.insert("Vote".into(), vote);
    let outcome = json!({
        "type": "object",
        "required": ["outcome"],
        "properties": {
            "outcome": { "type": "string", "enum": ["pending", "executed", "rejected", "withdrawn"] },
            "height": uint(), "tx_id": schema_ref("Hash32")
        }
    });
    s.insert(
        "Proposal".into(),
        object(
            &[
                "id",
                "kind",
                "action",
                "status",
                "stale",
                "base_gov_seq",
                "expires_at_height",
                "proposed_height",
                "proposer",
                "threshold",
                "approvals_missing",
                "regulators",
                "approvals",
                "rejections",
                "outcome",
            ],
            json!({
                "id": schema_ref("Hash32"), "kind": schema_ref("TxKind"),
                "action": schema_ref("TxBody"),
                "status": { "type": "string", "enum": ProposalStatus::ALL.map(|s| s.as_str()) },
                "stale": { "type": "boolean" }, "base_gov_seq": uint(),
                "expires_at_height": uint(), "proposed_height": uint(),
                "proposer": nullable(schema_ref("RegulatorView")),
                "threshold": uint(), "approvals_missing": uint(),
                "regulators": array_of(schema_ref("RegulatorView")),
                "approvals": array_of(schema_ref("Vote")),
                "rejections": array_of(schema_ref("Vote")),
                "outcome": outcome
            }),
        ),
    );
    s.insert(
        "ProposalList".into(),
        object(
            &["height", "gov_seq", "regulators", "total", "proposals"],
            json!({
                "height": uint(), "gov_seq": uint(), "regulators": schema_ref("Regulators"),
                "total": uint(),
                "proposals": {
                    "type": "array", "items": schema_ref("Proposal"),
                    "maxItems": MAX_LISTED_PROPOSALS
                }
            }),
        ),
    );
    s.insert(
        "ProposalAnswer".into(),
        object(
            &["height", "gov_seq", "proposal"],
            json!({ "height": uint(), "gov_seq": uint(), "proposal": schema_ref("Proposal") }),
        ),
    );
    s.insert(
        "Unit".into(),
        object(
            &[
                "credit_code",
                "name",
                "role",
                "public_key",
                "status",
                "revoked_at",
                "valid_until",
                "in_genesis",
                "history",
            ],
            json!({
                "credit_code": schema_ref("CreditCode"), "name": { "type": "string" },
                "role": { "type": "string", "enum": ["issuer", "reimburser"] },
                "code_prefixes": array_of(schema_ref("CodePrefix")),
                "public_key": schema_ref("PublicKey"),
                "status": { "type": "string", "enum": ["active", "revoked", "qualification_expired"] },
                "revoked_at": nullable(uint()),
                "valid_until": nullable(schema_ref("Timestamp")),
                "in_genesis": { "type": "boolean" },
                "history": array_of(object(&["action", "height", "tx_id"], json!({
                    "action": schema_ref("TxKind"), "height": uint(), "tx_id": schema_ref("Hash32")
                })))
            }),
        ),
    );
    s.insert(
        "UnitList".into(),
        object(
            &["height", "units"],
            json!({ "height": uint(), "units": array_of(schema_ref("Unit")) }),
        ),
    );
    s.insert(
        "UnitAnswer".into(),
        object(
            &["height", "unit", "state_proof"],
            json!({
                "height": uint(), "unit": schema_ref("Unit"),
                "state_proof": object(&["height", "state_root", "record", "proof"], json!({
                    "height": uint(), "state_root": schema_ref("Hash32"),
                    "record": schema_ref("HexBytes"), "proof": schema_ref("HexBytes")
                }))
            }),
        ),
    );
}

fn error_responses() -> Value {
    let err = |description: &str| json_answer(description, schema_ref("Error"));
    json!({
        "BadRequest": err("Malformed request: `malformed_json`, `invalid_json`, `invalid_body`, \
            `invalid_query` (an unknown query parameter too), `invalid_path`, \
            `missing_check_code`, `invalid_check_code`, ledger `invalid_tx`."),
        "BillNotFound": err("`bill_not_found`: no such bill, or not with this check code \
            (one answer for both, byte for byte)."),
        "TooLarge": err("`body_too_large` (over the route's byte limit) or `batch_too_large`."),
        "UnsupportedMediaType": err("`unsupported_media_type`: the body is not declared \
            `application/json`."),
        "BodyTimeout": err("`body_timeout`: the body did not arrive in time; the connection \
            is closed."),
        "Internal": err("`internal` (or `bundle_too_large`): a failure inside the node, logged."),
        "Unavailable": err("`overloaded` or `too_many_connections` (with `Retry-After`), \
            `mempool_full`, `not_a_validator`, `node_not_ready`, `shutting_down`."),
    })
}

/// The whole document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    primitive_schemas(&mut schemas);
    bill_schemas(&mut schemas);
    answer_schemas(&mut schemas);
    chain_schemas(&mut schemas);
    registry_schemas(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ebill node API",
            "version": "1",
            "description": "The HTTP API of an ebill node: submit signed transactions, verify \
                bills, fetch proof bundles, read blocks, the genesis, the registry and \
                governance. JSON in and out; hashes, keys and signatures are lowercase hex; \
                money is a two-decimal string; every failure is the `Error` body with a \
                stable code. Byte formats: docs/spec/. The taxpayers' HTML pages (`/`, \
                `/verify`, `/b/...`, `/static/...`) are served by the same node but are not \
                part of this contract.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "paths": paths_object(),
        "components": { "schemas": schemas, "responses": error_responses() }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `$ref` names a component that exists.
    #[test]
    fn every_ref_resolves() {
        fn walk(v: &Value, doc: &Value, seen: &mut usize) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let pointer = r.trim_start_matches('#');
                        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                        *seen += 1;
                    }
                    m.values().for_each(|x| walk(x, doc, seen));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc, seen)),
                _ => {}
            }
        }
        let doc = document();
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 50, "only {seen} references");
    }

    /// The document has exactly the (path, method) pairs the router serves, besides the
    /// pages, which are left out of the contract.
    #[test]
    fn the_document_has_every_served_route_and_no_other() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                documented.insert((path.clone(), method.to_uppercase()));
            }
        }
        let served: BTreeSet<(String, String)> = crate::routes::served()
            .into_iter()
            .map(|(p, m)| (p.to_owned(), m.as_str().to_owned()))
            .collect();
        assert_eq!(documented, served);
        for page in crate::web::paths::ALL {
            assert!(!page.starts_with("/v1"), "{page} is a page under /v1");
        }
    }

    /// Every code the API can answer is in the enumeration, and each once.
    #[test]
    fn the_error_codes_are_complete() {
        let doc = document();
        let listed: Vec<&str> = doc
            .pointer("/components/schemas/Error/properties/error/properties/code/enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for code in [
            "not_found",
            "bill_exists",
            "mempool_full",
            "proposal_not_found",
        ] {
            assert!(listed.contains(&code), "{code} missing");
        }
        assert_eq!(listed.len(), all_error_codes().len());
        assert_eq!(
            listed.len(),
            codes::ALL.len() + ErrorCode::ALL.len() + AdmissionCode::ALL.len() - 2 /* internal, bill_exists: both API and ledger/admission codes */
        );
    }
}
