//! A loopback HTTP file server for download tests (std only): serves fixed
//! bodies by path, honours `Range: bytes=N-` (206, or 416 past the end), can
//! cut a response short once (an interrupted download) and pace its bytes (so
//! a window has time to show progress). Every request is recorded.
//!
//! Used by the engine tests (`model_fetch`) and the desktop e2e tests, which
//! include this file by path.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Body bytes sent in answer.
    pub sent: u64,
}

/// How the server behaves.
#[derive(Default)]
pub struct Behaviour {
    /// The first answer for this path stops after this many body bytes (the
    /// connection closes, the headers having promised the whole body).
    pub cut_once: Option<(String, u64)>,
    /// Body bytes per second, paced in 64 KiB steps; `None`: as fast as possible.
    pub bytes_per_sec: Option<u64>,
}

/// A running server (a thread per connection; ends with the test process).
pub struct FileServer {
    pub base: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FileServer {
    pub fn start(routes: HashMap<String, Arc<Vec<u8>>>, behaviour: Behaviour) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let routes = Arc::new(routes);
        let cut = Arc::new(Mutex::new(behaviour.cut_once));
        let pace = behaviour.bytes_per_sec;
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (routes, seen, cut) =
                    (Arc::clone(&routes), Arc::clone(&seen), Arc::clone(&cut));
                std::thread::spawn(move || answer(stream, &routes, &seen, &cut, pace));
            }
        });
        FileServer { base, requests }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Arc<Vec<u8>>>,
    seen: &Mutex<Vec<Request>>,
    cut: &Mutex<Option<(String, u64)>>,
    pace: Option<u64>,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {
                if let Some((name, value)) = header.split_once(':') {
                    if name.trim().eq_ignore_ascii_case("range") {
                        range = Some(value.trim().to_string());
                    }
                }
            }
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(Request {
            path: path.clone(),
            range: range.clone(),
            sent: 0,
        });
        seen.len() - 1
    };
    let Some(body) = routes.get(&path) else {
        let _ = stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
        return;
    };
    let len = body.len() as u64;
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<u64>().ok());
    let head = match start {
        Some(start) if start >= len => {
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            return;
        }
        Some(start) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\n",
            len - 1,
            len - start
        ),
        None => format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n"),
    };
    let head = format!(
        "{head}Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let from = start.unwrap_or(0) as usize;
    let mut stop = body.len();
    {
        let mut cut = cut.lock().unwrap();
        if let Some((cut_path, at)) = cut.as_ref() {
            if *cut_path == path {
                stop = stop.min(from + *at as usize);
                *cut = None;
            }
        }
    }
    let step = 64 * 1024;
    let mut at = from;
    while at < stop {
        let end = (at + step).min(stop);
        if stream.write_all(&body[at..end]).is_err() {
            break;
        }
        seen.lock().unwrap()[index].sent += (end - at) as u64;
        at = end;
        if let Some(rate) = pace {
            std::thread::sleep(Duration::from_secs_f64(step as f64 / rate as f64));
        }
    }
    let _ = stream.flush();
    // Dropping the stream closes the connection, cut short or not.
}
