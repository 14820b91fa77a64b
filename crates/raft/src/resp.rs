//! RESP2, the Redis wire protocol: just enough of it for the sidecar to be a
//! Redis server to clients, and a Redis client to its own redis-server and
//! to its peers.
//!
//! One type, [`Frame`], is both a request (an array of bulk strings) and a
//! reply. Replies are stored in the Raft log's results and relayed verbatim
//! by a follower that proxies to the leader, so it is serialisable.

use serde::{Deserialize, Serialize};
use std::io;
use std::sync::Arc;
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

/// Limits on what is read from the network. The sidecar parses RESP from
/// anyone who can open a TCP connection to it, before any password: 800 KB
/// of nested array headers once overflowed its stack and killed the node,
/// and a header announcing a 512 MiB string made it allocate that much
/// before a byte of it had arrived.
pub mod limits {
    /// Longest bulk string (Redis's `proto-max-bulk-len`).
    pub const BULK: usize = 512 * 1024 * 1024;
    /// Longest line: a type byte and a number, an error or status reply,
    /// or an inline command (Redis's `PROTO_INLINE_MAX_SIZE`).
    pub const LINE: usize = 64 * 1024;
    /// Most arguments of one request.
    pub const ARGS: usize = 1 << 22;
    /// Bytes one request may hold, counting each argument as its length
    /// plus [`ARG_OVERHEAD`] (Redis's `client-query-buffer-limit`): what one
    /// connection can make the sidecar hold in memory.
    pub const REQUEST: usize = 1024 * 1024 * 1024;
    /// What an argument costs besides its bytes (its `Vec` and `Frame`).
    pub const ARG_OVERHEAD: usize = 64;
    /// Deepest nesting of arrays in a reply (Redis's own replies nest a
    /// few levels: EXEC of FCALLs of arrays).
    pub const DEPTH: usize = 32;
}

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

/// Reads one line without its CRLF into `buf`; false at a clean end of
/// stream. A line longer than [`limits::LINE`] is an error, found after
/// reading at most that much.
async fn line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    let read = (&mut *r)
        .take(limits::LINE as u64 + 2)
        .read_until(b'\n', buf)
        .await?;
    if read == 0 {
        return Ok(false);
    }
    if !buf.ends_with(b"\r\n") {
        return Err(if buf.len() > limits::LINE {
            bad(format!("line longer than {} bytes", limits::LINE))
        } else {
            bad("line not terminated by CRLF")
        });
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

/// A length announced by a header: -1 (nil) or 0..=`max`.
fn length(b: &[u8], max: usize, what: &str) -> io::Result<Option<usize>> {
    match number(b)? {
        -1 => Ok(None),
        n if n < 0 => Err(bad(format!("negative {what} length"))),
        n if n as u64 > max as u64 => Err(bad(format!("{what} longer than {max}"))),
        n => Ok(Some(n as usize)),
    }
}

/// Reads the `n` bytes of a bulk string and its CRLF. The buffer grows
/// as the bytes arrive, so a header alone costs nothing.
async fn bulk_body<R: AsyncBufRead + Unpin>(r: &mut R, n: usize) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(n.min(64 * 1024) + 2);
    (&mut *r).take(n as u64 + 2).read_to_end(&mut data).await?;
    if data.len() < n + 2 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "end of stream inside a bulk string",
        ));
    }
    if !data.ends_with(b"\r\n") {
        return Err(bad("bulk string not terminated by CRLF"));
    }
    data.truncate(n);
    Ok(data)
}

/// Reads one request from a client or a peer: an array of bulk strings
/// (as every Redis client sends), or an inline command (`PING` typed into
/// telnet), split on spaces. `None` at a clean end of stream. Anything else
/// (a nested array, a reply type) is a protocol error, as it is to Redis,
/// and so is a request past [`limits`].
pub async fn read_request<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    read_request_within(r, limits::REQUEST).await
}

/// [`read_request`] with `max_bytes` in place of [`limits::REQUEST`].
async fn read_request_within<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max_bytes: usize,
) -> io::Result<Option<Frame>> {
    let mut buf = Vec::new();
    if !line(r, &mut buf).await? {
        return Ok(None);
    }
    match buf.first() {
        Some(b'*') => {}
        Some(b'$' | b'+' | b'-' | b':') => {
            return Err(bad("expected '*' (an array of bulk strings)"));
        }
        _ => {
            return Ok(Some(Frame::Array(Some(
                buf.split(|&c| c == b' ')
                    .filter(|w| !w.is_empty())
                    .map(Frame::bulk)
                    .collect(),
            ))))
        }
    }
    let Some(n) = length(&buf[1..], limits::ARGS, "array")? else {
        return Ok(Some(Frame::Array(None)));
    };
    let mut budget = max_bytes;
    let mut args = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        if !line(r, &mut buf).await? {
            return Err(bad("end of stream inside a request"));
        }
        if buf.first() != Some(&b'$') {
            return Err(bad("expected '$' (a bulk string) in a request"));
        }
        let Some(len) = length(&buf[1..], limits::BULK, "bulk string")? else {
            return Err(bad("a nil bulk string in a request"));
        };
        budget = budget
            .checked_sub(len + limits::ARG_OVERHEAD)
            .ok_or_else(|| bad(format!("request larger than {max_bytes} bytes")))?;
        args.push(Frame::Bulk(Some(bulk_body(r, len).await?)));
    }
    Ok(Some(Frame::Array(Some(args))))
}

/// Reads one reply (from a redis-server or a peer's sidecar); `None` at a
/// clean end of stream. Arrays nest at most [`limits::DEPTH`] deep.
pub async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    read_nested(r, 0).await
}

async fn read_nested<R: AsyncBufRead + Unpin>(
    r: &mut R,
    depth: usize,
) -> io::Result<Option<Frame>> {
    let mut buf = Vec::new();
    if !line(r, &mut buf).await? {
        return Ok(None);
    }
    let Some(&kind) = buf.first() else {
        return Err(bad("empty line where a reply was expected"));
    };
    let rest = &buf[1..];
    let frame = match kind {
        b'+' => Frame::Simple(String::from_utf8_lossy(rest).into_owned()),
        b'-' => Frame::Error(String::from_utf8_lossy(rest).into_owned()),
        b':' => Frame::Int(number(rest)?),
        b'$' => match length(rest, limits::BULK, "bulk string")? {
            None => Frame::Bulk(None),
            Some(n) => Frame::Bulk(Some(bulk_body(r, n).await?)),
        },
        b'*' => match length(rest, limits::ARGS, "array")? {
            None => Frame::Array(None),
            Some(_) if depth >= limits::DEPTH => {
                return Err(bad(format!("arrays nested deeper than {}", limits::DEPTH)));
            }
            Some(n) => {
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let item = Box::pin(read_nested(r, depth + 1))
                        .await?
                        .ok_or_else(|| bad("end of stream inside an array"))?;
                    items.push(item);
                }
                Frame::Array(Some(items))
            }
        },
        other => return Err(bad(format!("unknown reply type byte {other:#04x}"))),
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

/// The byte stream under a [`Conn`]: plain TCP, or TLS over it.
pub enum Stream {
    /// Plain text.
    Plain(TcpStream),
    /// TLS (to a peer, or to a node as a client).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A client connection speaking RESP2: to the local redis-server, to a
/// peer's sidecar (Raft RPCs) or to the leader's sidecar (proxied commands).
pub struct Conn {
    stream: BufReader<Stream>,
}

/// How to reach a node: in plain text, or in TLS.
#[derive(Clone, Default)]
pub enum Dial {
    /// Plain text.
    #[default]
    Plain,
    /// TLS as a peer: presents this node's certificate, and the other
    /// end's must name the node dialled.
    Peer(Arc<crate::tls::NodeTls>),
    /// TLS as a client, checking the node's certificate against the host
    /// dialled.
    Client(tokio_rustls::TlsConnector),
}

/// What a connection authenticates with (`AUTH [user] password`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The user: none for a client's password alone, `admin` for the
    /// sidecar's administrator ([`Auth::ADMIN`]).
    pub user: Option<String>,
    /// The password.
    pub password: String,
}

impl Auth {
    /// The administrator's user name on a sidecar.
    pub const ADMIN: &'static str = "admin";

    /// A client's password.
    pub fn password(password: &str) -> Auth {
        Auth {
            user: None,
            password: password.to_owned(),
        }
    }

    /// The sidecar's administrator.
    pub fn admin(password: &str) -> Auth {
        Auth {
            user: Some(Auth::ADMIN.to_owned()),
            password: password.to_owned(),
        }
    }
}

impl Conn {
    /// Connects to `addr` and authenticates with `password` if one is given.
    pub async fn connect(addr: &str, password: Option<&str>) -> io::Result<Conn> {
        Conn::dial(addr, &Dial::Plain, 0, password.map(Auth::password).as_ref()).await
    }

    /// Connects to node `node` at `addr` as `dial` says, and
    /// authenticates with `auth` if given.
    pub async fn dial(addr: &str, dial: &Dial, node: u64, auth: Option<&Auth>) -> io::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = match dial {
            Dial::Plain => Stream::Plain(tcp),
            Dial::Peer(tls) => Stream::Tls(Box::new(tls.connect_peer(tcp, node).await?)),
            Dial::Client(connector) => {
                let name = crate::tls::server_name(addr)?;
                Stream::Tls(Box::new(
                    tokio::time::timeout(crate::tls::HANDSHAKE, connector.connect(name, tcp))
                        .await
                        .map_err(|_| {
                            io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time")
                        })??,
                ))
            }
        };
        let mut conn = Conn {
            stream: BufReader::new(stream),
        };
        if let Some(auth) = auth {
            let mut args = vec![b"AUTH".as_slice()];
            args.extend(auth.user.as_deref().map(str::as_bytes));
            args.push(auth.password.as_bytes());
            if let Frame::Error(e) = conn.call(&args).await? {
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
        match self.stream.get_ref().tcp().try_read(&mut probe) {
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
        let f = read_request(&mut r).await.unwrap().unwrap();
        assert_eq!(
            f.into_args().unwrap(),
            vec![b"RAFT.INFO".to_vec(), b"now".to_vec()]
        );
    }

    async fn request(bytes: &[u8]) -> io::Result<Option<Frame>> {
        read_request(&mut BufReader::new(bytes)).await
    }

    fn refused(r: io::Result<Option<Frame>>) -> String {
        let e = r.expect_err("accepted");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        e.to_string()
    }

    #[tokio::test]
    async fn nested_array_headers_are_refused_not_recursed_into() {
        // The remote crash of issue 17: 800 KB of `*3\r\n`.
        let attack = b"*3\r\n".repeat(200_000);
        refused(request(&attack).await);
        let e = read_frame(&mut BufReader::new(&attack[..]))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nested deeper"), "{e}");
        // Replies nest as deep as Redis's own.
        let mut deep = b"*1\r\n".repeat(limits::DEPTH);
        deep.extend_from_slice(b":1\r\n");
        assert!(read_frame(&mut BufReader::new(&deep[..])).await.is_ok());
    }

    #[tokio::test]
    async fn a_request_past_the_limits_is_refused_before_it_is_read() {
        let e = refused(request(&vec![b'x'; limits::LINE + 10]).await);
        assert!(e.contains("line longer"), "{e}");
        let e = refused(request(format!("*{}\r\n", limits::ARGS + 1).as_bytes()).await);
        assert!(e.contains("array longer"), "{e}");
        let e = refused(request(format!("*1\r\n${}\r\n", limits::BULK + 1).as_bytes()).await);
        assert!(e.contains("bulk string longer"), "{e}");
        // A header announcing the largest string allowed allocates nothing
        // up front: the stream ends, and that is all.
        let header = format!("*1\r\n${}\r\nabc", limits::BULK);
        let e = request(header.as_bytes()).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // Strings each within the per-string limit, together past the
        // request's: refused at the header that passes it, unread.
        let three = b"*3\r\n$100\r\n".to_vec();
        let mut bytes = three;
        bytes.extend(std::iter::repeat_n(b'a', 100));
        bytes.extend_from_slice(b"\r\n$100\r\n");
        bytes.extend(std::iter::repeat_n(b'a', 100));
        bytes.extend_from_slice(b"\r\n$100\r\n");
        let within = |max| {
            let bytes = bytes.clone();
            async move { read_request_within(&mut BufReader::new(&bytes[..]), max).await }
        };
        let e = refused(within(300).await);
        assert!(e.contains("request larger than 300"), "{e}");
        let e = within(1000).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        for bad in [
            &b"$3\r\nabc\r\n"[..],
            b"*1\r\n*1\r\n$1\r\na\r\n",
            b"*1\r\n$-1\r\n",
            b"*-5\r\n",
            b"*1\r\n$2\r\nabc\r\n",
        ] {
            refused(request(bad).await);
        }
    }

    #[tokio::test]
    async fn random_bytes_never_panic_and_well_formed_requests_survive_them() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let good = {
            let mut out = Vec::new();
            Frame::command(&[&b"FCALL"[..], b"wclab_commit", b"7", b"\r\n\x00"]).encode(&mut out);
            out
        };
        for _ in 0..20_000 {
            // A well-formed request, then mutated: bytes flipped, cut,
            // spliced with RESP's own punctuation.
            let mut bytes = good.clone();
            for _ in 0..rng.random_range(0..4) {
                let i = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes[i] = rng.random(),
                    1 => bytes.truncate(i),
                    2 => bytes.splice(i..i, b"*9\r\n".iter().copied()).for_each(drop),
                    _ => bytes
                        .splice(i..i, b"$99999999\r\n".iter().copied())
                        .for_each(drop),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let mut r = BufReader::new(&bytes[..]);
            while let Ok(Some(_)) = read_request(&mut r).await {}
            let mut r = BufReader::new(&bytes[..]);
            while let Ok(Some(_)) = read_frame(&mut r).await {}
        }
        assert_eq!(
            request(&good).await.unwrap().unwrap().into_args().unwrap()[3],
            b"\r\n\x00".to_vec()
        );
    }
}
