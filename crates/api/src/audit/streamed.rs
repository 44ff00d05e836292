//! An answer whose body a blocking task writes as it goes: the task writes into a
//! [`ChunkWriter`] (a [`std::io::Write`]), which hands the bytes to the response in
//! chunks of [`CHUNK_BYTES`] over a channel of [`CHANNEL_CHUNKS`], so an export of any
//! size holds a few chunks in memory and a slow client slows the writer down rather
//! than fill the node's memory.
//!
//! The answer's status is settled by what comes first: a failure before the first chunk
//! is an ordinary error answer (its status and code); after it, a failure breaks the
//! body off without its last chunk, so no client takes a part of a file for the whole.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Bytes the writer gathers before it hands them to the response.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks that may wait for the client before the writer waits too.
pub const CHANNEL_CHUNKS: usize = 4;

/// What the writing task sends to the response.
enum Piece {
    Bytes(Bytes),
    /// The writer failed; nothing more comes.
    Failed(ApiError),
    /// The body is whole.
    End,
}

/// The writing task's end of an answer's body.
pub struct ChunkWriter {
    tx: mpsc::Sender<Piece>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES));
        self.tx
            .blocking_send(Piece::Bytes(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(data.len())
    }

    /// Chunks go out when [`CHUNK_BYTES`] are gathered and at the end; a writer's own
    /// flushes (Parquet flushes after each row group) do not cut small chunks.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Answers 200 with `headers` and the body that `write` writes on a blocking thread
/// (see the module's doc for how failures show).
pub async fn answer<F>(headers: HeaderMap, write: F) -> Result<Response, ApiError>
where
    F: FnOnce(&mut ChunkWriter) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        };
        let last = match write(&mut w) {
            Ok(()) => match w.send_buffered() {
                Ok(()) => Piece::End,
                // It fails only when the client went away: no one is left to tell.
                Err(_) => return,
            },
            Err(e) => Piece::Failed(e),
        };
        // Fails only when the client went away, which needs no answer.
        let _ = w.tx.blocking_send(last);
    });
    let first = match rx.recv().await {
        Some(Piece::Failed(e)) => return Err(e),
        Some(Piece::Bytes(b)) => Some(b),
        Some(Piece::End) => None,
        None => {
            return Err(ApiError::internal(
                "an answer's body",
                &"the writing task ended without a word",
            ));
        }
    };
    let ended = first.is_none();
    let rest = futures_util::stream::unfold((!ended).then_some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Piece::Bytes(b)) => Some((Ok(b), Some(rx))),
            Some(Piece::End) => None,
            Some(Piece::Failed(e)) => {
                tracing::warn!(code = %e.code, "an answer broke off after its first bytes");
                Some((Err(io::Error::other("the answer broke off")), None))
            }
            None => Some((Err(io::Error::other("the writing task died")), None)),
        }
    });
    let body = futures_util::stream::iter(first.map(Ok)).chain(rest);
    let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
    resp.headers_mut().extend(headers);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    async fn collect(resp: Response) -> Result<Vec<u8>, axum::Error> {
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .map(|b| b.to_vec())
    }

    #[tokio::test]
    async fn a_body_of_many_chunks_arrives_whole() {
        let resp = answer(HeaderMap::new(), |w| {
            for i in 0..100_000u32 {
                w.write_all(&i.to_le_bytes()).unwrap();
            }
            Ok(())
        })
        .await
        .unwrap();
        let bytes = collect(resp).await.unwrap();
        assert_eq!(bytes.len(), 400_000);
        assert_eq!(bytes.get(399_996..), Some(&99_999u32.to_le_bytes()[..]));
    }

    #[tokio::test]
    async fn an_empty_body_is_an_empty_answer() {
        let resp = answer(HeaderMap::new(), |_| Ok(())).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(collect(resp).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failure_before_the_first_chunk_is_an_error_answer() {
        let err = answer(HeaderMap::new(), |w| {
            w.write_all(b"a few bytes, not yet a chunk").unwrap();
            Err(ApiError::bad_request("some_code", "refused"))
        })
        .await
        .err()
        .unwrap();
        assert_eq!(err.code, "some_code");
    }

    #[tokio::test]
    async fn a_failure_after_the_first_chunk_breaks_the_body_off() {
        let resp = answer(HeaderMap::new(), |w| {
            w.write_all(&vec![7u8; CHUNK_BYTES * 2]).unwrap();
            Err(ApiError::internal("a test", &"failed midway"))
        })
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            collect(resp).await.is_err(),
            "a broken body must not end cleanly"
        );
    }

    #[tokio::test]
    async fn a_client_that_goes_away_stops_the_writer() {
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let resp = answer(HeaderMap::new(), move |w| {
            let mut result = Ok(());
            for _ in 0..10_000 {
                result = w.write_all(&[0u8; CHUNK_BYTES]);
                if result.is_err() {
                    break;
                }
            }
            seen_tx.send(result.map_err(|e| e.kind())).unwrap();
            Ok(())
        })
        .await
        .unwrap();
        drop(resp);
        let seen = tokio::task::spawn_blocking(move || seen_rx.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(seen, Err(io::ErrorKind::BrokenPipe));
    }
}
