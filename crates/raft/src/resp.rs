//! RESP2, the Redis wire protocol: just enough of it for the sidecar to be a
//! Redis server to clients, and a Redis client to its own redis-server and
//! to its peers.
//!
//! One type, [`Frame`], is both a request (an array of bulk strings) and a
//! reply. Replies are stored in the Raft log's results and relayed verbatim
//! by a follower that proxies to the leader, so it is serialisable.

use serde::{Deserialize, Serialize};
use std::io;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::TcpStream;

/// A RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// `+OK`
    Simple(String),
    /// `-ERR message`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$3\r\nabc` or the nil bulk `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...` or the nil array `*-1`.
    Array(Option<Vec<Frame>>),
}

/// Largest bulk string or array accepted from the network (512 MiB, Redis's limit).
const MAX_LEN: i64 = 512 * 1024 * 1024;

impl Frame {
    /// `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".into())
    }

    /// An error reply; `msg` should start with an upper-case code (`ERR`, `TRYAGAIN`).
    pub fn err(msg: impl Into<String>) -> Frame {
        Frame::Error(msg.into().replace(['\r', '\n'], " "))
    }

    /// A bulk string.
    pub fn bulk(b: impl Into<Vec<u8>>) -> Frame {
        Frame::Bulk(Some(b.into()))
    }

    /// A request: an array of bulk strings.
    pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Frame {
        Frame::Array(Some(args.iter().map(|a| Frame::bulk(a.as_ref())).collect()))
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(Some(b)) => Some(b),
            Frame::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The arguments of a request, if this is an array of strings.
    pub fn into_args(self) -> Option<Vec<Vec<u8>>> {
        match self {
            Frame::Array(Some(items)) => items
                .into_iter()
                .map(|f| match f {
                    Frame::Bulk(Some(b)) => Some(b),
                    Frame::Simple(s) => Some(s.into_bytes()),
                    Frame::Int(i) => Some(i.to_string().into_bytes()),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Simple(s) => {
                out.push(b'+');
                out.extend_from_slice(s.as_bytes());
            }
            Frame::Error(s) => {
                out.push(b'-');
                out.extend_from_slice(s.as_bytes());
            }
            Frame::Int(i) => {
                out.push(b':');
                out.extend_from_slice(i.to_string().as_bytes());
            }
            Frame::Bulk(None) => out.extend_from_slice(b"$-1"),
            Frame::Bulk(Some(b)) => {
                out.push(b'$');
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(b);
            }
            Frame::Array(None) => out.extend_from_slice(b"*-1"),
            Frame::Array(Some(items)) => {
                out.push(b'*');
                out.extend_from_slice(items.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for f in items {
                    f.encode(out);
                }
                return;
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

async fn line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    if r.read_until(b'\n', buf).await? == 0 {
        return Ok(false);
    }
    if !buf.ends_with(b"\r\n") {
        return Err(bad("line not terminated by CRLF"));
    }
    buf.truncate(buf.len() - 2);
    Ok(true)
}

fn number(b: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad number"))
}

/// Reads one frame; `None` at a clean end of stream. A line that does not
/// start with a RESP type byte is an inline command (`PING` typed into
/// telnet), split on spaces.
pub async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut buf = Vec::new();
    if !line(r, &mut buf).await? {
        return Ok(None);
    }
    let Some(&kind) = buf.first() else {
        return Ok(Some(Frame::Array(Some(Vec::new()))));
    };
    let rest = buf[1..].to_vec();
    let frame = match kind {
        b'+' => Frame::Simple(String::from_utf8_lossy(&rest).into_owned()),
        b'-' => Frame::Error(String::from_utf8_lossy(&rest).into_owned()),
        b':' => Frame::Int(number(&rest)?),
        b'$' => {
            let n = number(&rest)?;
            if n < 0 {
                Frame::Bulk(None)
            } else if n > MAX_LEN {
                return Err(bad("bulk string too long"));
            } else {
                let mut data = vec![0; n as usize + 2];
                r.read_exact(&mut data).await?;
                data.truncate(n as usize);
                Frame::Bulk(Some(data))
            }
        }
        b'*' => {
            let n = number(&rest)?;
            if n < 0 {
                Frame::Array(None)
            } else if n > MAX_LEN {
                return Err(bad("array too long"));
            } else {
                let mut items = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    let item = Box::pin(read_frame(r))
                        .await?
                        .ok_or_else(|| bad("end of stream inside an array"))?;
                    items.push(item);
                }
                Frame::Array(Some(items))
            }
        }
        _ => Frame::Array(Some(
            buf.split(|&c| c == b' ')
                .filter(|w| !w.is_empty())
                .map(Frame::bulk)
                .collect(),
        )),
    };
    Ok(Some(frame))
}

/// Writes one frame and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, f: &Frame) -> io::Result<()> {
    let mut out = Vec::new();
    f.encode(&mut out);
    w.write_all(&out).await?;
    w.flush().await
}

/// A client connection speaking RESP2: to the local redis-server, to a
/// peer's sidecar (Raft RPCs) or to the leader's sidecar (proxied commands).
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `addr` and authenticates with `password` if one is given.
    pub async fn connect(addr: &str, password: Option<&str>) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        if let Some(pw) = password {
            if let Frame::Error(e) = conn.call(&[b"AUTH".as_slice(), pw.as_bytes()]).await? {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("AUTH to {addr} failed: {e}"),
                ));
            }
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply (an error reply is `Ok(Frame::Error)`).
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<Frame> {
        self.send(&Frame::command(args)).await
    }

    /// Sends a frame and reads the reply.
    pub async fn send(&mut self, f: &Frame) -> io::Result<Frame> {
        self.write(f).await?;
        self.read().await
    }

    /// Sends several commands at once and reads their replies, in order:
    /// one round trip for a whole batch (Redis runs them one after the
    /// other, as if sent one by one).
    pub async fn pipeline(&mut self, commands: &[&[Vec<u8>]]) -> io::Result<Vec<Frame>> {
        let mut out = Vec::new();
        for args in commands {
            Frame::command(args).encode(&mut out);
        }
        let w = self.stream.get_mut();
        w.write_all(&out).await?;
        w.flush().await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.read().await?);
        }
        Ok(replies)
    }

    /// Sends a frame (whole, or the connection is broken).
    pub async fn write(&mut self, f: &Frame) -> io::Result<()> {
        write_frame(self.stream.get_mut(), f).await
    }

    /// Reads one reply.
    pub async fn read(&mut self) -> io::Result<Frame> {
        read_frame(&mut self.stream)
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"))
    }

    /// Whether the other side has closed (or broken) this idle connection,
    /// so that a request sent on it could not be delivered. Checked before
    /// reusing a connection: a request lost on a connection known dead was
    /// never sent, while one lost on a live one has an unknown fate.
    pub fn is_dead(&self) -> bool {
        if !self.stream.buffer().is_empty() {
            return true; // bytes nobody asked for: out of step
        }
        let mut probe = [0u8; 1];
        match self.stream.get_ref().try_read(&mut probe) {
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
            Ok(_) => true, // end of stream, or bytes nobody asked for
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn roundtrip(f: Frame) -> Frame {
        let mut out = Vec::new();
        f.encode(&mut out);
        let mut r = BufReader::new(out.as_slice());
        read_frame(&mut r).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn frames_survive_encoding() {
        let f = Frame::Array(Some(vec![
            Frame::ok(),
            Frame::err("ERR x"),
            Frame::Int(-3),
            Frame::bulk(b"a\r\nb".to_vec()),
            Frame::Bulk(None),
            Frame::Array(None),
            Frame::Array(Some(vec![])),
        ]));
        assert_eq!(roundtrip(f.clone()).await, f);
    }

    #[tokio::test]
    async fn an_inline_command_is_split_on_spaces() {
        let mut r = BufReader::new(&b"RAFT.INFO  now\r\n"[..]);
        let f = read_frame(&mut r).await.unwrap().unwrap();
        assert_eq!(
            f.into_args().unwrap(),
            vec![b"RAFT.INFO".to_vec(), b"now".to_vec()]
        );
    }
}
