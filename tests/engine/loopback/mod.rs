//! A small HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI and Gemini
//! embedding wire formats, returns deterministic vectors, enforces the
//! providers' limits and API keys, and injects faults on demand.
//!
//! Shared by the provider, cost and keychain tests and the concurrency benchmark
//! (`mod loopback;` / `#[path]`). Connections are closed after each answer.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A fault to inject into one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and body, optionally with `Retry-After` (seconds)
    /// and `retry-after-ms`.
    Status {
        code: u16,
        body: String,
        retry_after: Option<String>,
        retry_after_ms: Option<u64>,
    },
    /// Wait this long before answering (normally).
    Stall(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with vectors of this many dimensions.
    WrongDims(usize),
    /// Close the connection without answering.
    Disconnect,
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        let body = json!({"error": {"message": format!("injected {code}"), "type": "server_error", "code": null}});
        Fault::Status {
            code,
            body: body.to_string(),
            retry_after: None,
            retry_after_ms: None,
        }
    }

    pub fn status_body(code: u16, body: Value) -> Fault {
        Fault::Status {
            code,
            body: body.to_string(),
            retry_after: None,
            retry_after_ms: None,
        }
    }

    pub fn too_many(retry_after: Option<&str>, retry_after_ms: Option<u64>) -> Fault {
        let body = json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}});
        Fault::Status {
            code: 429,
            body: body.to_string(),
            retry_after: retry_after.map(str::to_string),
            retry_after_ms,
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Logged {
    /// 1-based arrival number.
    pub seq: usize,
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
    /// The texts to embed, in order.
    pub inputs: Vec<String>,
    /// Gemini task types per input.
    pub task_types: Vec<String>,
    /// cl100k tokens of the inputs.
    pub tokens: usize,
    /// Status answered (0 for a dropped connection).
    pub status: u16,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Fault>,
    at: HashMap<usize, Fault>,
    always: Option<Fault>,
    log: Vec<Logged>,
    raw: Vec<String>,
}

/// The server. Stops accepting when dropped.
pub struct Server {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    latency: Arc<Mutex<Duration>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    seq: Arc<AtomicUsize>,
    /// Dimensions of models the server does not know (compatible servers).
    pub default_dims: Arc<AtomicUsize>,
    /// The API key required (OpenAI bearer / Gemini header); `None`: none needed.
    key: Option<String>,
}

impl Server {
    /// Starts a server that requires `key` (when given).
    pub fn start(key: Option<&str>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server {
            addr,
            state: Arc::default(),
            stop: Arc::default(),
            latency: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            seq: Arc::default(),
            default_dims: Arc::new(AtomicUsize::new(384)),
            key: key.map(str::to_string),
        };
        let ctx = server.ctx();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if ctx.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let ctx = ctx.clone();
                thread::spawn(move || handle(stream, ctx));
            }
        });
        server
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            state: Arc::clone(&self.state),
            stop: Arc::clone(&self.stop),
            latency: Arc::clone(&self.latency),
            in_flight: Arc::clone(&self.in_flight),
            max_in_flight: Arc::clone(&self.max_in_flight),
            seq: Arc::clone(&self.seq),
            default_dims: Arc::clone(&self.default_dims),
            key: self.key.clone(),
        }
    }

    /// OpenAI-style base URL (`http://127.0.0.1:PORT/v1`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Gemini-style base URL (`http://127.0.0.1:PORT/v1beta`).
    pub fn gemini_base(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    /// Faults for the next requests, one each, in order.
    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().queue.extend(faults);
    }

    /// A fault for the request with this 1-based arrival number.
    pub fn fail_at(&self, seq: usize, fault: Fault) {
        self.state.lock().unwrap().at.insert(seq, fault);
    }

    /// A fault for every request from now on (`None` to stop).
    pub fn fail_always(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().always = fault;
    }

    /// Drops every scheduled fault.
    pub fn reset_faults(&self) {
        let mut st = self.state.lock().unwrap();
        st.queue.clear();
        st.at.clear();
        st.always = None;
    }

    /// Added latency before every answer.
    pub fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap() = d;
    }

    /// Everything received so far.
    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Raw request heads and bodies, for leak checks.
    pub fn raw(&self) -> Vec<String> {
        self.state.lock().unwrap().raw.clone()
    }

    /// Requests answered 200.
    pub fn successes(&self) -> Vec<Logged> {
        self.log().into_iter().filter(|l| l.status == 200).collect()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// Starts counting [`Server::max_in_flight`] afresh.
    pub fn reset_max_in_flight(&self) {
        self.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// Most requests handled at the same time so far.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

#[derive(Clone)]
struct Ctx {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    latency: Arc<Mutex<Duration>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    seq: Arc<AtomicUsize>,
    default_dims: Arc<AtomicUsize>,
    key: Option<String>,
}

struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle(stream: TcpStream, ctx: Ctx) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    let mut head = line.clone();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&h);
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let at = Instant::now();
    let now = ctx.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    ctx.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let in_flight = InFlight(&ctx.in_flight);

    let text_body = String::from_utf8_lossy(&body).to_string();
    let json: Value = serde_json::from_str(&text_body).unwrap_or(Value::Null);
    let gemini = path.contains(":batchEmbedContents") || path.contains(":embedContent");
    let (inputs, task_types) = if gemini {
        gemini_inputs(&path, &json)
    } else {
        (openai_inputs(&json), Vec::new())
    };
    let bpe = tiktoken_rs::cl100k_base_singleton();
    let tokens = inputs.iter().map(|t| bpe.encode_ordinary(t).len()).sum();

    let fault = {
        let mut st = ctx.state.lock().unwrap();
        st.raw.push(format!("{head}{text_body}"));
        st.at
            .remove(&seq)
            .or_else(|| st.queue.pop_front())
            .or_else(|| st.always.clone())
    };
    let latency = *ctx.latency.lock().unwrap();
    if !latency.is_zero() {
        thread::sleep(latency);
    }

    let (status, extra, payload) = match fault {
        Some(Fault::Disconnect) => (0, Vec::new(), String::new()),
        Some(Fault::Status {
            code,
            body,
            retry_after,
            retry_after_ms,
        }) => {
            let mut extra = Vec::new();
            if let Some(ra) = retry_after {
                extra.push(format!("Retry-After: {ra}"));
            }
            if let Some(ms) = retry_after_ms {
                extra.push(format!("retry-after-ms: {ms}"));
            }
            (code, extra, body)
        }
        Some(Fault::Malformed) => (200, Vec::new(), "{\"data\": [{\"embedding\": [0.1, ".into()),
        Some(Fault::Stall(d)) => {
            thread::sleep(d);
            answer(&ctx, &method, &path, &headers, &json, &inputs, gemini, None)
        }
        Some(Fault::WrongDims(d)) => answer(
            &ctx,
            &method,
            &path,
            &headers,
            &json,
            &inputs,
            gemini,
            Some(d),
        ),
        None => answer(&ctx, &method, &path, &headers, &json, &inputs, gemini, None),
    };
    ctx.state.lock().unwrap().log.push(Logged {
        seq,
        at,
        method,
        path,
        headers,
        body: json,
        inputs,
        task_types,
        tokens,
        status,
    });
    // Done before answering: the client cannot start its next request before it
    // has this answer, so the count never overlaps two requests of one slot.
    drop(in_flight);
    if status == 0 {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        payload.len()
    );
    for e in extra {
        head.push_str(&e);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(payload.as_bytes());
    let _ = out.flush();
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn openai_inputs(json: &Value) -> Vec<String> {
    match &json["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect(),
        _ => Vec::new(),
    }
}

fn gemini_inputs(path: &str, json: &Value) -> (Vec<String>, Vec<String>) {
    let one = |r: &Value| {
        (
            r["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            r["taskType"].as_str().unwrap_or("").to_string(),
        )
    };
    if path.contains(":batchEmbedContents") {
        json["requests"]
            .as_array()
            .map(|a| a.iter().map(one).unzip())
            .unwrap_or_default()
    } else {
        let (t, k) = one(json);
        (vec![t], vec![k])
    }
}

/// The vector the server returns for `text` of `model` with `dims` dimensions:
/// deterministic, unit length.
pub fn vector_for(model: &str, task: &str, text: &str, dims: usize) -> Vec<f32> {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in model
        .bytes()
        .chain([0])
        .chain(task.bytes())
        .chain([0])
        .chain(text.bytes())
    {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            ((h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

pub fn model_dims(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        "text-embedding-004" => Some(768),
        "gemini-embedding-001" => Some(3072),
        _ => None,
    }
}

fn openai_error(code: u16, message: &str, kind: &str) -> (u16, Vec<String>, String) {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": kind}});
    (code, Vec::new(), body.to_string())
}

#[allow(clippy::too_many_arguments)]
fn answer(
    ctx: &Ctx,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    json: &Value,
    inputs: &[String],
    gemini: bool,
    force_dims: Option<usize>,
) -> (u16, Vec<String>, String) {
    let bpe = tiktoken_rs::cl100k_base_singleton();
    if method != "POST" {
        return openai_error(405, "method not allowed", "method");
    }
    if gemini {
        if let Some(key) = &ctx.key {
            if headers.get("x-goog-api-key") != Some(key) {
                let body = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}});
                return (400, Vec::new(), body.to_string());
            }
        }
        let model = path
            .split("/models/")
            .nth(1)
            .and_then(|m| m.split(':').next())
            .unwrap_or("");
        let Some(native) = model_dims(model) else {
            let body = json!({"error": {"code": 404, "message": format!("models/{model} is not found for API version v1beta"), "status": "NOT_FOUND"}});
            return (404, Vec::new(), body.to_string());
        };
        if inputs.len() > 100 {
            let body = json!({"error": {"code": 400, "message": "at most 100 requests can be in one batch", "status": "INVALID_ARGUMENT"}});
            return (400, Vec::new(), body.to_string());
        }
        let reqs: Vec<&Value> = if path.contains(":batchEmbedContents") {
            json["requests"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default()
        } else {
            vec![json]
        };
        let vectors: Vec<Value> = reqs
            .iter()
            .map(|r| {
                let dims = force_dims
                    .or_else(|| r["outputDimensionality"].as_u64().map(|d| d as usize))
                    .unwrap_or(native);
                let text = r["content"]["parts"][0]["text"].as_str().unwrap_or("");
                let task = r["taskType"].as_str().unwrap_or("");
                json!({"values": vector_for(model, task, text, dims)})
            })
            .collect();
        let body = if path.contains(":batchEmbedContents") {
            json!({"embeddings": vectors})
        } else {
            json!({"embedding": vectors[0]})
        };
        return (200, Vec::new(), body.to_string());
    }
    if !path.ends_with("/embeddings") {
        return openai_error(404, "Not found", "unknown_url");
    }
    if let Some(key) = &ctx.key {
        if headers.get("authorization") != Some(&format!("Bearer {key}")) {
            return openai_error(401, "Incorrect API key provided: test-***. You can find your API key in your account settings.", "invalid_api_key");
        }
    }
    let model = json["model"].as_str().unwrap_or("");
    let dims = match (model_dims(model), json["dimensions"].as_u64()) {
        (_, Some(d)) => d as usize,
        (Some(n), None) => n,
        (None, None) if model.starts_with("text-embedding") => {
            return openai_error(
                404,
                &format!("The model `{model}` does not exist or you do not have access to it."),
                "model_not_found",
            )
        }
        (None, None) => ctx.default_dims.load(Ordering::SeqCst),
    };
    let dims = force_dims.unwrap_or(dims);
    if inputs.is_empty() || inputs.len() > 2048 || inputs.iter().any(|t| t.is_empty()) {
        return openai_error(400, "'$.input' is invalid.", "invalid_input");
    }
    let mut total = 0;
    for t in inputs {
        let n = bpe.encode_ordinary(t).len();
        if n > 8191 {
            return openai_error(400, &format!("This model's maximum context length is 8192 tokens, however you requested {n} tokens."), "context_length_exceeded");
        }
        total += n;
    }
    if total > 300_000 {
        return openai_error(
            400,
            "Requested 300001 tokens, max 300000 tokens per request",
            "max_tokens_per_request",
        );
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector_for(model, "", t, dims)}))
        .collect();
    let body = json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": total, "total_tokens": total}});
    (200, Vec::new(), body.to_string())
}
