//! The request-response codec of block sync: length-prefixed frames with hard limits.
//!
//! A frame is a big-endian `u32` length and that many bytes. A request is at most
//! [`MAX_REQUEST_BYTES`]; a response at most the configured sync response limit. Bytes
//! are read as they arrive (never allocated up front from a length a peer declared), so
//! a lying peer costs no more memory than it actually sends.

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::Codec;

use crate::sync::SyncRequest;

/// Most bytes of one encoded sync request.
pub const MAX_REQUEST_BYTES: usize = 1024;

/// The bytes of a sync response as they travel: canonical bytes made by a responder
/// (see [`crate::sync`]) and decoded by the requester, outside the event loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse(pub Vec<u8>);

/// The codec: frames with limits; requests are decoded canonically here, responses
/// are passed on as bytes.
#[derive(Clone, Debug)]
pub struct SyncCodec {
    max_response_bytes: usize,
}

impl SyncCodec {
    /// A codec that accepts responses of at most `max_response_bytes`.
    pub fn new(max_response_bytes: usize) -> Self {
        Self { max_response_bytes }
    }
}

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max_bytes: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the limit of {max_bytes}"),
        ));
    }
    let mut buf = Vec::new();
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame ends after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    max_bytes: usize,
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| *l as usize <= max_bytes)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes over the limit of {max_bytes}",
                    bytes.len()
                ),
            )
        })?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, MAX_REQUEST_BYTES).await?;
        SyncRequest::decode(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(SyncResponse(read_frame(io, self.max_response_bytes).await?))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.encode(), MAX_REQUEST_BYTES).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res.0, self.max_response_bytes).await
    }
}
