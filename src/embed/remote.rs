//! What every remote embedder shares: batching within a provider's limits,
//! bounded concurrency, retries with exponential backoff and jitter, splitting of
//! over-long inputs, validation of what comes back, and usage counting.
//!
//! A provider module only supplies a [`Wire`]: how to build a request and read a
//! response in its format, and what its error bodies mean.

use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::{normalize, Embedder, Outgoing, RunControl, Usage};
use crate::cost::tokens;
use crate::error::{Error, ErrorKind, Result};
use crate::keys::ApiKey;

/// A provider's request limits, in `cl100k_base` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inputs in one request.
    pub max_inputs: usize,
    /// Tokens in one request, all inputs together.
    pub max_request_tokens: usize,
    /// Tokens in one input; longer inputs are split (never truncated).
    pub max_input_tokens: usize,
}

/// Network behaviour of a remote embedder. Every field has a default, so a
/// settings file only names what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoteOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of one request after a 429, a 5xx, a timeout or a dropped connection.
    pub max_retries: u32,
    /// First backoff delay; it doubles on each retry (with jitter).
    pub backoff_base_ms: u64,
    /// Longest backoff delay.
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` Sift waits for; a longer one fails the run at once.
    pub max_retry_after_secs: u64,
    /// Time limit of one request, answer included.
    pub timeout_ms: u64,
    /// Inputs per request, when lower than the provider's own limit.
    pub batch_size: Option<usize>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            concurrency: 4,
            max_retries: 6,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
            max_retry_after_secs: 300,
            timeout_ms: 60_000,
            batch_size: None,
        }
    }
}

impl RemoteOptions {
    /// True when nothing differs from the defaults (to keep settings files short).
    pub fn is_default(&self) -> bool {
        *self == RemoteOptions::default()
    }
}

/// Whether texts are passages to index or a search query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Passages (Gemini: `RETRIEVAL_DOCUMENT`).
    Document,
    /// A query (Gemini: `RETRIEVAL_QUERY`).
    Query,
}

/// The error of a failed request, as read from the provider's error body.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiError {
    /// The provider's message.
    pub message: String,
    /// Its machine-readable code, status or reason (`insufficient_quota`,
    /// `API_KEY_INVALID`, ...), empty when none.
    pub code: String,
}

/// What to do about a failed request.
pub(crate) enum Failure {
    /// Try again after a backoff; the error is reported if retries run out.
    Retry(Error),
    /// Give up now.
    Fatal(Error),
}

/// A provider's wire format.
pub(crate) trait Wire: Send + Sync + 'static {
    /// A request embedding `texts` (already within limits).
    fn request(
        &self,
        client: &reqwest::Client,
        texts: &[String],
        task: Task,
    ) -> reqwest::RequestBuilder;

    /// The vectors of a successful response, in input order.
    fn parse(&self, body: &[u8], task: Task) -> std::result::Result<Vec<Vec<f32>>, String>;

    /// Reads an error body. The default understands `{"error": {"message",
    /// "code" | "status" | "type"}}` (OpenAI, Gemini, most gateways) and
    /// `{"error": "text"}` (Ollama).
    fn error_details(&self, body: &str) -> ApiError {
        default_error_details(body)
    }

    /// Provider-specific meaning of an error; `None` leaves it to the defaults.
    fn classify(&self, _meta: &Meta, _status: StatusCode, _err: &ApiError) -> Option<Failure> {
        None
    }

    /// Kind of the final error when 429s outlast the retries.
    fn rate_limit_exhausted_kind(&self) -> ErrorKind {
        ErrorKind::ProviderDown
    }

    /// The secret to scrub from any text shown to the user.
    fn key(&self) -> Option<&ApiKey>;
}

/// Who an embedder talks to, for messages.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Ledger name: `openai`, `gemini`, `compatible`.
    pub provider: &'static str,
    /// Name for people: `OpenAI`, `Gemini`, `the OpenAI-compatible server`.
    pub label: &'static str,
    /// Model name.
    pub model: String,
    /// Base URL, without any user name or password in it.
    pub base_url: String,
}

struct Inner {
    meta: Meta,
    wire: Box<dyn Wire>,
    client: reqwest::Client,
    options: RemoteOptions,
    usage: Mutex<Usage>,
}

/// An [`Embedder`] that calls a remote provider. Built by the provider modules
/// ([`super::openai`], [`super::gemini`], [`super::compatible`]).
pub struct RemoteEmbedder {
    inner: Arc<Inner>,
    id: String,
    dimensions: usize,
    limits: Limits,
}

impl std::fmt::Debug for RemoteEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedder")
            .field("id", &self.id)
            .field("base_url", &self.inner.meta.base_url)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

/// One unit of work: consecutive whole texts, sent in one request (or, for a
/// single text too big for one request, a few in a row).
struct Job {
    /// Index of its first text in the caller's slice.
    first: usize,
    /// Per text: the range of its pieces in `pieces`.
    texts: Vec<Range<usize>>,
    pieces: Vec<String>,
    piece_tokens: Vec<usize>,
    /// Ranges of `pieces` sent together.
    requests: Vec<Range<usize>>,
}

impl Job {
    fn tokens(&self) -> u64 {
        self.piece_tokens.iter().map(|&t| t as u64).sum()
    }
}

impl RemoteEmbedder {
    /// Builds an embedder; `dimensions: None` asks the provider once with a probe
    /// request and takes the length of what comes back.
    pub(crate) fn new(
        meta: Meta,
        wire: Box<dyn Wire>,
        limits: Limits,
        options: RemoteOptions,
        dimensions: Option<usize>,
        id_prefix: String,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(options.timeout_ms.max(1)))
            .connect_timeout(Duration::from_millis(options.timeout_ms.clamp(1, 10_000)))
            .user_agent(concat!("sift/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not set up HTTP: {}", e.without_url()),
                )
            })?;
        let mut limits = limits;
        if let Some(b) = options.batch_size {
            limits.max_inputs = limits.max_inputs.min(b.max(1));
        }
        let mut me = RemoteEmbedder {
            inner: Arc::new(Inner {
                meta,
                wire,
                client,
                options,
                usage: Mutex::new(Usage::default()),
            }),
            id: id_prefix,
            dimensions: dimensions.unwrap_or(0),
            limits,
        };
        if dimensions.is_none() {
            let inner = Arc::clone(&me.inner);
            let probe = vec!["dimension probe".to_string()];
            let vectors = block_on(async move {
                let tokens = tokens::count_tokens(&probe[0]);
                send_with_retry(&inner, probe, vec![tokens], Task::Query, None).await
            })?;
            me.dimensions = vectors.first().map_or(0, Vec::len);
            if me.dimensions == 0 {
                return Err(me.inner.bad_response("it returned an empty vector"));
            }
            me.id = format!("{}@{}", me.id, me.dimensions);
        }
        Ok(me)
    }

    /// Cuts `texts` into jobs within the limits.
    fn plan(&self, texts: &[String]) -> Vec<Job> {
        let lim = self.limits;
        let mut jobs: Vec<Job> = Vec::new();
        let mut current: Option<Job> = None;
        for (i, text) in texts.iter().enumerate() {
            // Providers reject empty inputs; a space embeds as "nothing".
            let text = if text.trim().is_empty() { " " } else { text };
            let pieces = tokens::split_to_fit(text, lim.max_input_tokens);
            let counts: Vec<usize> = pieces.iter().map(|p| tokens::count_tokens(p)).collect();
            let total: usize = counts.iter().sum();
            let fits_one_request =
                pieces.len() <= lim.max_inputs && total <= lim.max_request_tokens;
            if let Some(job) = current.as_mut() {
                let n = job.pieces.len();
                let t = job.tokens() as usize;
                let fits = fits_one_request
                    && n + pieces.len() <= lim.max_inputs
                    && t + total <= lim.max_request_tokens;
                if !fits {
                    jobs.extend(current.take());
                }
            }
            let job = current.get_or_insert_with(|| Job {
                first: i,
                texts: Vec::new(),
                pieces: Vec::new(),
                piece_tokens: Vec::new(),
                requests: Vec::new(),
            });
            let start = job.pieces.len();
            job.pieces.extend(pieces.iter().map(|p| p.to_string()));
            job.piece_tokens.extend(counts);
            job.texts.push(start..job.pieces.len());
            if !fits_one_request {
                // A text too big for one request: its own job, several requests.
                jobs.extend(current.take());
            }
        }
        jobs.extend(current);
        for job in &mut jobs {
            let (mut start, mut n, mut t) = (0, 0, 0);
            for (k, &tok) in job.piece_tokens.iter().enumerate() {
                if n > 0 && (n + 1 > lim.max_inputs || t + tok > lim.max_request_tokens) {
                    job.requests.push(start..k);
                    (start, n, t) = (k, 0, 0);
                }
                n += 1;
                t += tok;
            }
            job.requests.push(start..job.pieces.len());
        }
        jobs
    }

    /// Embeds every piece of `job` and merges the pieces of each text.
    async fn run_job(
        inner: Arc<Inner>,
        job: Job,
        task: Task,
        dims: usize,
    ) -> Result<(usize, Vec<Vec<f32>>)> {
        let mut piece_vectors = Vec::with_capacity(job.pieces.len());
        for r in &job.requests {
            let texts = job.pieces[r.clone()].to_vec();
            let counts = job.piece_tokens[r.clone()].to_vec();
            piece_vectors.extend(send_with_retry(&inner, texts, counts, task, Some(dims)).await?);
        }
        let vectors = job
            .texts
            .iter()
            .map(|r| merge(&piece_vectors[r.clone()], &job.piece_tokens[r.clone()]))
            .collect();
        Ok((job.first, vectors))
    }
}

/// One vector for a text from the vectors of its pieces: their average weighted by
/// tokens, normalised.
fn merge(vectors: &[Vec<f32>], weights: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0f32; vectors[0].len()];
    for (v, &w) in vectors.iter().zip(weights) {
        let w = w.max(1) as f32;
        out.iter_mut().zip(v).for_each(|(o, x)| *o += w * x);
    }
    normalize(&mut out);
    out
}

impl Embedder for RemoteEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_input_tokens(&self) -> usize {
        self.limits.max_input_tokens
    }

    fn count_tokens(&self, text: &str) -> usize {
        tokens::count_tokens(text)
    }

    fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = vec![Vec::new(); texts.len()];
        self.embed_documents_with(texts, &RunControl::new(), &mut |first, vectors| {
            for (k, v) in vectors.into_iter().enumerate() {
                out[first + k] = v;
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut jobs = self.plan(&[text.to_string()]);
        let job = jobs
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "empty plan"))?;
        let fut = Self::run_job(Arc::clone(&self.inner), job, Task::Query, self.dimensions);
        let (_, mut vectors) = block_on(fut)?;
        vectors
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "no query vector"))
    }

    fn provider(&self) -> &str {
        self.inner.meta.provider
    }

    fn model(&self) -> &str {
        &self.inner.meta.model
    }

    fn take_usage(&self) -> Usage {
        std::mem::take(&mut *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn embed_documents_with(
        &self,
        texts: &[String],
        control: &RunControl<'_>,
        sink: &mut dyn FnMut(usize, Vec<Vec<f32>>) -> Result<()>,
    ) -> Result<()> {
        control.check_cancelled()?;
        let mut jobs = self.plan(texts).into_iter();
        let concurrency = self.inner.options.concurrency.max(1);
        let dims = self.dimensions;
        let inner = &self.inner;
        block_on(async move {
            let mut running = JoinSet::new();
            let mut failure: Option<Error> = None;
            loop {
                while failure.is_none() && running.len() < concurrency {
                    let Some(job) = jobs.next() else { break };
                    if let Err(e) = control.check_cancelled() {
                        running.abort_all();
                        return Err(e);
                    }
                    let outgoing = Outgoing {
                        texts: job.texts.len(),
                        tokens: job.tokens(),
                    };
                    if let Err(e) = control.admit(&outgoing) {
                        failure = Some(e);
                        break;
                    }
                    running.spawn(Self::run_job(Arc::clone(inner), job, Task::Document, dims));
                }
                if running.is_empty() {
                    break;
                }
                tokio::select! {
                    joined = running.join_next() => match joined {
                        Some(Ok(Ok((first, vectors)))) => {
                            // Delivered even after another batch failed: it is paid for.
                            if let Err(e) = sink(first, vectors) {
                                running.abort_all();
                                return Err(e);
                            }
                        }
                        Some(Ok(Err(e))) => {
                            failure.get_or_insert(e);
                        }
                        Some(Err(e)) => {
                            failure.get_or_insert(Error::new(
                                ErrorKind::Internal,
                                format!("an embedding task failed: {e}"),
                            ));
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if control.is_cancelled() {
                            running.abort_all();
                            return control.check_cancelled();
                        }
                    }
                }
            }
            failure.map_or(Ok(()), Err)
        })
    }
}

/// The process-wide runtime of remote embedders (never dropped, so dropping an
/// embedder is safe anywhere).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sift-http")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("could not start the HTTP runtime: {e}"),
        )
    })
}

/// Runs a future that may borrow from the caller on the shared runtime.
fn block_on<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::Internal,
            "remote embedders block: call them from a blocking thread (spawn_blocking), \
             not from async code",
        ));
    }
    runtime()?.block_on(fut)
}

/// Sends one request, retrying transient failures; counts usage on success.
async fn send_with_retry(
    inner: &Inner,
    texts: Vec<String>,
    token_counts: Vec<usize>,
    task: Task,
    expected_dims: Option<usize>,
) -> Result<Vec<Vec<f32>>> {
    let opts = &inner.options;
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        let (error, retry_after, rate_limited) = match attempt_once(inner, &texts, task).await {
            Attempt::Done(body) => {
                let vectors = inner.check(&body, task, texts.len(), expected_dims)?;
                let mut usage = inner.usage.lock().unwrap_or_else(|e| e.into_inner());
                usage.requests += 1;
                usage.tokens_sent += token_counts.iter().map(|&t| t as u64).sum::<u64>();
                return Ok(vectors);
            }
            Attempt::Fatal(e) => return Err(e),
            Attempt::Retry(e, retry_after, rate_limited) => (e, retry_after, rate_limited),
        };
        if attempt >= opts.max_retries {
            return Err(inner.gave_up(error, rate_limited, attempt + 1, started.elapsed()));
        }
        let wait = match retry_after {
            Some(ra) if ra > Duration::from_secs(opts.max_retry_after_secs) => {
                return Err(inner.gave_up(
                    Error::new(
                        error.kind(),
                        format!("{} (it asks to wait {} s)", error.message(), ra.as_secs()),
                    ),
                    rate_limited,
                    attempt + 1,
                    started.elapsed(),
                ));
            }
            // Honour the provider's wait, plus a little jitter so parallel
            // requests do not return in lockstep.
            Some(ra) => ra + jitter(opts.backoff_base_ms / 4),
            None => backoff(opts, attempt),
        };
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// `base * 2^attempt`, capped, with "equal jitter": half fixed, half random.
fn backoff(opts: &RemoteOptions, attempt: u32) -> Duration {
    let exp = opts
        .backoff_base_ms
        .saturating_mul(1u64 << attempt.min(20))
        .min(opts.backoff_max_ms);
    Duration::from_millis(exp / 2) + jitter(exp / 2)
}

fn jitter(max_ms: u64) -> Duration {
    if max_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=max_ms))
}

enum Attempt {
    Done(Vec<u8>),
    /// The error, the provider's `Retry-After`, and whether it was a 429.
    Retry(Error, Option<Duration>, bool),
    Fatal(Error),
}

async fn attempt_once(inner: &Inner, texts: &[String], task: Task) -> Attempt {
    let meta = &inner.meta;
    let response = match inner.wire.request(&inner.client, texts, task).send().await {
        Ok(r) => r,
        Err(e) => return Attempt::Retry(inner.network_error(e), None, false),
    };
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Attempt::Retry(inner.network_error(e), None, false),
    };
    if status.is_success() {
        return Attempt::Done(body.to_vec());
    }
    let text = String::from_utf8_lossy(&body);
    let mut details = inner.wire.error_details(&text);
    details.message = inner.scrub(&details.message);
    if details.message.is_empty() {
        details.message = inner.scrub(&text.chars().take(300).collect::<String>());
    }
    let failure = inner
        .wire
        .classify(meta, status, &details)
        .unwrap_or_else(|| default_classify(meta, status, &details));
    match failure {
        Failure::Retry(e) => Attempt::Retry(e, retry_after, status.as_u16() == 429),
        Failure::Fatal(e) => Attempt::Fatal(e),
    }
}

/// `retry-after-ms` (OpenAI) or `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |v: &HeaderValue| v.to_str().ok().map(str::trim).map(str::to_string);
    if let Some(ms) = headers.get("retry-after-ms").and_then(text) {
        if let Ok(ms) = ms.parse::<f64>() {
            if ms.is_finite() && ms >= 0.0 {
                return Some(Duration::from_micros((ms * 1000.0) as u64));
            }
        }
    }
    let value = headers.get(reqwest::header::RETRY_AFTER).and_then(text)?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(&value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn default_error_details(body: &str) -> ApiError {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return ApiError::default();
    };
    let err = &json["error"];
    if let Some(s) = err.as_str() {
        return ApiError {
            message: s.to_string(),
            code: String::new(),
        };
    }
    let field = |k: &str| err[k].as_str().map(str::to_string);
    ApiError {
        message: field("message").unwrap_or_default(),
        code: field("code")
            .or_else(|| field("status"))
            .or_else(|| field("type"))
            .unwrap_or_default(),
    }
}

fn default_classify(meta: &Meta, status: StatusCode, err: &ApiError) -> Failure {
    let Meta {
        provider,
        label,
        model,
        base_url,
    } = meta;
    let code = status.as_u16();
    let msg = &err.message;
    let lower = msg.to_lowercase();
    let fatal = |kind, text: String| Failure::Fatal(Error::new(kind, text));
    match code {
        401 => fatal(
            ErrorKind::InvalidKey,
            format!(
                "{label} rejected the API key (HTTP 401: {msg}). Check the key and store it \
                 again with `sift key set {provider}`."
            ),
        ),
        403 => fatal(
            ErrorKind::InvalidKey,
            format!(
                "{label} refused access with this API key (HTTP 403: {msg}). Check that the \
                 key's project may use {model}, or store another key with `sift key set {provider}`."
            ),
        ),
        402 => fatal(
            ErrorKind::QuotaExhausted,
            format!(
                "{label} says the account is out of credit (HTTP 402: {msg}). Add credit, \
                 then run again: finished batches are kept."
            ),
        ),
        404 => fatal(
            ErrorKind::ModelNotFound,
            format!(
                "{label} at {base_url} does not know the model {model:?} (HTTP 404: {msg}). \
                 Check the model name and the base URL in the settings."
            ),
        ),
        400 | 413 | 422
            if lower.contains("maximum context length")
                || lower.contains("too long")
                || lower.contains("too many tokens")
                || (lower.contains("exceeds") && lower.contains("token"))
                || code == 413 =>
        {
            fatal(
                ErrorKind::InputTooLong,
                format!(
                    "{label} says an input is too long for {model} (HTTP {code}: {msg}). Its \
                     tokenizer counts more tokens than Sift's estimate: lower \
                     max_input_tokens for this provider in the settings."
                ),
            )
        }
        400 | 422 => fatal(
            ErrorKind::InvalidInput,
            format!("{label} refused the request for {model} (HTTP {code}: {msg})."),
        ),
        429 => Failure::Retry(Error::new(
            ErrorKind::ProviderDown,
            format!("{label} is rate limiting requests (HTTP 429: {msg})"),
        )),
        408 | 409 | 425 | 500..=599 => Failure::Retry(Error::new(
            ErrorKind::ProviderDown,
            format!("{label} failed (HTTP {code}: {msg})"),
        )),
        _ => fatal(
            ErrorKind::BadResponse,
            format!("{label} answered HTTP {code} unexpectedly: {msg}"),
        ),
    }
}

impl Inner {
    fn scrub(&self, text: &str) -> String {
        match self.wire.key() {
            Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "[redacted]"),
            _ => text.to_string(),
        }
    }

    fn network_error(&self, e: reqwest::Error) -> Error {
        let Meta {
            label, base_url, ..
        } = &self.meta;
        let what = if e.is_timeout() {
            format!(
                "{label} did not answer within {:.1} s",
                self.options.timeout_ms as f64 / 1000.0
            )
        } else if e.is_connect() {
            format!("could not connect to {label} at {base_url}")
        } else {
            format!("the connection to {label} failed")
        };
        // The causes say more than reqwest's summary ("connection refused",
        // "connection closed before message completed").
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            detail = format!("{detail}: {cause}");
            source = cause.source();
        }
        let detail = self.scrub(&detail);
        Error::new(ErrorKind::ProviderDown, format!("{what} ({detail})"))
    }

    fn bad_response(&self, what: &str) -> Error {
        let Meta { label, model, .. } = &self.meta;
        Error::new(
            ErrorKind::BadResponse,
            format!(
                "{label} answered with something Sift cannot use for {model}: {what}. \
                 Nothing from it was stored; if a proxy sits in between, check it."
            ),
        )
    }

    /// Parses and validates a successful response.
    fn check(
        &self,
        body: &[u8],
        task: Task,
        n: usize,
        expected_dims: Option<usize>,
    ) -> Result<Vec<Vec<f32>>> {
        let mut vectors = self
            .wire
            .parse(body, task)
            .map_err(|e| self.bad_response(&self.scrub(&e)))?;
        if vectors.len() != n {
            return Err(self.bad_response(&format!("{} vectors for {n} inputs", vectors.len())));
        }
        for v in &mut vectors {
            if let Some(want) = expected_dims {
                if v.len() != want {
                    let Meta { label, model, .. } = &self.meta;
                    return Err(Error::new(
                        ErrorKind::WrongDimensions,
                        format!(
                            "{label} returned vectors of {} dimensions for {model}, expected \
                             {want}. Nothing from this response was stored. Check that the \
                             base URL serves {model} and the `dimensions` setting; Sift keeps \
                             a separate index for each model and size.",
                            v.len()
                        ),
                    ));
                }
            }
            if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                return Err(self.bad_response("an empty or non-finite vector"));
            }
            normalize(v);
        }
        Ok(vectors)
    }

    /// The error once retries are used up.
    fn gave_up(&self, last: Error, rate_limited: bool, attempts: u32, elapsed: Duration) -> Error {
        let kind = if rate_limited {
            self.wire.rate_limit_exhausted_kind()
        } else {
            ErrorKind::ProviderDown
        };
        let advice = match kind {
            ErrorKind::QuotaExhausted => {
                "Your rate limit or quota is used up: wait, or raise it with the provider"
            }
            _ => "It may be down or overloaded: try again later (or lower `concurrency`)",
        };
        Error::new(
            kind,
            format!(
                "{} — gave up after {attempts} attempts over {:.1} s. {advice}; batches \
                 already embedded are kept and the next run resumes.",
                last.message(),
                elapsed.as_secs_f64()
            ),
        )
    }
}

/// `url` without user name or password, for messages.
pub(crate) fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string().trim_end_matches('/').to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// Checks a configured base URL.
pub(crate) fn parse_base_url(url: &str, provider: &str) -> Result<String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the base URL for {provider} is not a URL ({e}): {}",
                display_url(url)
            ),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the base URL for {provider} must start with http:// or https://"),
        ));
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

/// A header value that HTTP debugging output never shows.
pub(crate) fn secret_header(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let opts = RemoteOptions {
            backoff_base_ms: 100,
            backoff_max_ms: 1000,
            ..Default::default()
        };
        for attempt in 0..8 {
            let d = backoff(&opts, attempt).as_millis() as u64;
            let exp = (100u64 << attempt).min(1000);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d} ms");
        }
    }

    #[test]
    fn merge_weights_by_tokens() {
        let v = merge(&[vec![1.0, 0.0], vec![0.0, 1.0]], &[3, 1]);
        assert!((v[0] - 0.9486833).abs() < 1e-6 && (v[1] - 0.31622776).abs() < 1e-6);
    }

    #[test]
    fn error_bodies() {
        let e = default_error_details(
            r#"{"error":{"message":"m","type":"t","code":"insufficient_quota"}}"#,
        );
        assert_eq!(
            (e.message.as_str(), e.code.as_str()),
            ("m", "insufficient_quota")
        );
        let e = default_error_details(r#"{"error":"model \"x\" not found"}"#);
        assert_eq!(e.message, "model \"x\" not found");
        assert_eq!(default_error_details("<html>").message, "");
        assert_eq!(
            display_url("https://u:p@example.test/v1/"),
            "https://example.test/v1"
        );
    }
}
