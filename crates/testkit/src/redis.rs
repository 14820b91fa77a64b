//! A minimal synchronous RESP client for test assertions: tests read Redis
//! directly, independently of the code under test.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and friends.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$...` (None for nil).
    Bulk(Option<Vec<u8>>),
    /// `*...` (None for nil).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The integer, or panics.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }
    /// The elements of an array, or panics.
    pub fn array(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(a)) => a,
            Reply::Array(None) => &[],
            other => panic!("not an array: {other:?}"),
        }
    }
    /// A bulk string as text (nil: empty), or panics.
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Bulk(None) => String::new(),
            Reply::Status(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            other => panic!("not a string: {other:?}"),
        }
    }
}

/// A byte stream a [`Client`] can talk over: TCP, or TLS over it.
pub trait Transport: std::io::Read + Write + Send {}

impl<T: std::io::Read + Write + Send> Transport for T {}

/// A connection to a test server.
pub struct Client {
    reader: BufReader<Box<dyn Transport>>,
}

impl Client {
    /// A client over `stream` (a TLS stream, say), authenticated with
    /// `password` unless it is `None`.
    pub fn over(
        stream: impl Transport + 'static,
        password: Option<&str>,
    ) -> std::io::Result<Client> {
        let mut c = Client {
            reader: BufReader::new(Box::new(stream)),
        };
        match password.map(|pw| c.cmd(&["AUTH", pw])) {
            None | Some(Reply::Status(_)) => Ok(c),
            Some(other) => Err(std::io::Error::other(format!("AUTH failed: {other:?}"))),
        }
    }

    /// Connects and authenticates.
    pub fn connect(port: u16, password: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        Client::over(stream, Some(password))
    }

    /// Connects and authenticates as ACL user `user`.
    pub fn connect_as(port: u16, user: &str, password: &str) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        let mut c = Client::over(stream, None)?;
        match c.cmd(&["AUTH", user, password]) {
            Reply::Status(_) => Ok(c),
            other => Err(std::io::Error::other(format!(
                "AUTH {user} failed: {other:?}"
            ))),
        }
    }

    /// Runs one command.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        if let Err(e) = self.reader.get_mut().write_all(&buf) {
            return closed(&e.to_string());
        }
        self.read()
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return closed("end of stream"),
            Err(e) => return closed(&e.to_string()),
            Ok(_) => {}
        }
        let (kind, rest) = line.trim_end().split_at(1);
        match kind {
            "+" => Reply::Status(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut data = vec![0; n as usize + 2];
                if let Err(e) = std::io::Read::read_exact(&mut self.reader, &mut data) {
                    return closed(&e.to_string());
                }
                data.truncate(n as usize);
                Reply::Bulk(Some(data))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            other => panic!("unexpected RESP type {other:?}"),
        }
    }
}

/// The reply standing for a connection that broke mid-command (a server
/// killed, or exiting, while a test talks to it): an error a caller can
/// treat like any other failed command, rather than a panic in the client.
fn closed(why: &str) -> Reply {
    Reply::Error(format!("IOERR connection lost: {why}"))
}
