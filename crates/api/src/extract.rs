//! Extractors that answer every failure with the JSON error shape: a strict JSON body
//! (content type checked, size limited by the route's `DefaultBodyLimit`, unknown fields
//! refused by the types), path parameters and query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::decode::{RequestBody, decode};
use crate::error::{ApiError, codes};
use crate::server::BodyReadDeadline;

/// A JSON body, parsed strictly into `T`; a refusal names the field
/// ([`crate::decode`]).
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

/// True if the request declares `application/json` (parameters such as `charset`
/// allowed).
fn is_json(req: &Request) -> bool {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The body limit of a route, in bytes, set by the router next to axum's own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// 413 `body_too_large`.
fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::BODY_TOO_LARGE,
        "the request body is over this route's size limit",
    )
}

/// Reads the body within the route's limit, mapping a too-long body to 413, and
/// before the request's [`BodyReadDeadline`] if the server set one (408 after it).
/// A body whose `Content-Length` is already over the route's [`BodyLimit`] is refused
/// at once, without waiting for a byte of it.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if let Some(BodyLimit(max_bytes)) = req.extensions().get::<BodyLimit>().copied() {
        let declared_bytes = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared_bytes.is_some_and(|n| n > max_bytes as u64) {
            return Err(body_too_large());
        }
    }
    let deadline = req.extensions().get::<BodyReadDeadline>().copied();
    let read = Bytes::from_request(req, state);
    let read = match deadline {
        Some(BodyReadDeadline(at)) => match tokio::time::timeout_at(at, read).await {
            Ok(r) => r,
            Err(_) => {
                tracing::debug!("request body not read within the body read timeout");
                return Err(ApiError::body_timeout());
            }
        },
        None => read.await,
    };
    read.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            body_too_large()
        } else {
            ApiError::bad_request(codes::INVALID_BODY, r.body_text())
        }
    })
}

/// Refuses a body not declared as JSON with 415.
pub(crate) fn require_json(req: &Request) -> Result<(), ApiError> {
    if is_json(req) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON, sent with Content-Type: application/json",
        ))
    }
}

impl<T, S> FromRequest<S> for StrictJson<T>
where
    T: RequestBody,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&req)?;
        let bytes = read_body(req, state).await?;
        decode(&bytes).map(StrictJson)
    }
}

/// Path parameters; a failure is 400 `invalid_path`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::bad_request(codes::INVALID_PATH, r.body_text()))
    }
}

/// The query string; a failure is 400 `invalid_query`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::bad_request(codes::INVALID_QUERY, r.body_text()))
    }
}
