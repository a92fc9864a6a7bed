//! The local embedder: all-MiniLM-L6-v2 run on the CPU.
//!
//! Matches sentence-transformers' pipeline for this model: BERT word pieces with
//! `[CLS]`/`[SEP]`, at most 256 positions, mean pooling over the real tokens,
//! L2 normalisation. The shipped `tokenizer.json` hard-codes truncation and padding
//! at 128 tokens; both are switched off here: over-long input is rejected, never
//! cut, and nothing is padded.
//!
//! Weights, config and the forward pass are the `sift-encoder` crate
//! (`crates/encoder`): its `Encoder` runs the tokens of a sub-batch packed
//! together (no padding, no mask) with the `gemm` crate for its products, plus
//! vectorised row kernels. Document batches take narrower products where the
//! CPU has them: bfloat16 (`bf16`, AVX-512 BF16 or AMX) or 16-bit fixed point
//! (`fixed16`, AVX2 without AVX-512). On 2 cores it was 2-3 times faster than
//! candle-transformers' `BertModel` on the same weights, which is why candle is
//! not used (see BENCHMARKS.md for the comparison with PyTorch).

use std::path::Path;

use tokenizers::Tokenizer;

use super::Embedder;
use crate::error::{Error, ErrorKind, Result};
use crate::model::MODEL_FILES;

use sift_encoder::{Config, Encoder, Scratch};

/// Identifier of this embedder's vector space.
pub const MODEL_ID: &str = "local/all-MiniLM-L6-v2";
/// Length of every vector.
pub const DIMENSIONS: usize = 384;
/// Positions the model accepts, `[CLS]` and `[SEP]` included.
pub const MAX_SEQUENCE: usize = 256;
/// Inputs per forward pass.
const SUB_BATCH: usize = 32;

/// What the local model's document batches are multiplied in on this CPU
/// (e.g. "8-bit integers, AVX-512 VNNI"), for status displays: its speed
/// depends on it.
pub fn arithmetic() -> &'static str {
    sift_encoder::arithmetic()
}

/// all-MiniLM-L6-v2 on the CPU.
pub struct LocalEmbedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
}

impl LocalEmbedder {
    /// Loads the model from `model_dir`, which must hold `model.safetensors`,
    /// `tokenizer.json` and `config.json`.
    ///
    /// Errors with [`ErrorKind::ModelMissing`] when a file is absent and
    /// [`ErrorKind::ModelInvalid`] when one cannot be read as the expected model.
    pub fn load(model_dir: &Path) -> Result<Self> {
        let missing: Vec<&str> = MODEL_FILES
            .iter()
            .copied()
            .filter(|name| !model_dir.join(name).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(Error::new(
                ErrorKind::ModelMissing,
                format!(
                    "the local embedding model is missing from {} (no {}): run `sift model fetch`",
                    model_dir.display(),
                    missing.join(", ")
                ),
            ));
        }
        let invalid = |file: &str, why: String| {
            Error::new(
                ErrorKind::ModelInvalid,
                format!(
                    "{} is not a usable all-MiniLM-L6-v2 file ({why}): run `sift model fetch` to download it again",
                    model_dir.join(file).display()
                ),
            )
        };

        let config_path = model_dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| invalid("config.json", e.to_string()))?;
        if config.hidden_size != DIMENSIONS || config.max_position_embeddings < MAX_SEQUENCE {
            return Err(invalid(
                "config.json",
                format!(
                    "hidden size {}, {} positions; expected {DIMENSIONS} and at least {MAX_SEQUENCE}",
                    config.hidden_size, config.max_position_embeddings
                ),
            ));
        }

        let mut tokenizer = Tokenizer::from_file(model_dir.join("tokenizer.json"))
            .map_err(|e| invalid("tokenizer.json", e.to_string()))?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| invalid("tokenizer.json", e.to_string()))?;
        tokenizer.with_padding(None);

        // Mapped, not read: the encoder uses the f32 tensors where they lie,
        // so a fresh process is ready without copying 90 MB.
        let weights_path = model_dir.join("model.safetensors");
        let weights = std::fs::File::open(&weights_path)
            // SAFETY: the mapping is read-only. The file is Sift's own copy in
            // its model folder, replaced only by rename (`sift model fetch`
            // writes a new file), never rewritten in place while mapped.
            .and_then(|f| unsafe { memmap2::Mmap::map(&f) })
            .map_err(|e| Error::io(&weights_path, e))?;
        let encoder =
            Encoder::load(weights, &config).map_err(|e| invalid("model.safetensors", e))?;

        Ok(LocalEmbedder { encoder, tokenizer })
    }

    /// Word pieces of every text, `[CLS]`/`[SEP]` included; errors on over-long input.
    fn encode_all(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("tokenizer failed: {e}")))?;
        encodings
            .into_iter()
            .enumerate()
            .map(|(i, enc)| {
                let ids = enc.get_ids().to_vec();
                if ids.len() > MAX_SEQUENCE {
                    return Err(Error::new(
                        ErrorKind::InputTooLong,
                        format!(
                            "input {i} is {} word pieces long; {MODEL_ID} accepts at most {}",
                            ids.len() - 2,
                            MAX_SEQUENCE - 2
                        ),
                    ));
                }
                Ok(ids)
            })
            .collect()
    }
}

impl Embedder for LocalEmbedder {
    fn id(&self) -> &str {
        MODEL_ID
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn max_input_tokens(&self) -> usize {
        MAX_SEQUENCE - 2
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode_fast(text, false)
            .map(|enc| enc.len())
            .unwrap_or(0)
    }

    fn embed_documents(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        // Indexing work: on the background pool (lowered priority, the user's
        // CPU share), so searches are served first. Queries stay on the caller's.
        crate::background::install(|| self.embed_now(texts))
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut out = crate::background::foreground(|| self.embed_now(&[text.to_string()]))?;
        Ok(out.pop().unwrap_or_default())
    }

    fn prepare_for_queries(&self) {
        self.encoder.prepare_packed();
    }
}

impl LocalEmbedder {
    /// Embeds `texts` on the calling thread's pool.
    fn embed_now(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let encoded = self.encode_all(texts)?;
        // Sub-batches of similar lengths share the attention work evenly.
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());

        let mut vectors = vec![Vec::new(); encoded.len()];
        let mut scratch = Scratch::default();
        for group in order.chunks(SUB_BATCH) {
            let batch: Vec<&[u32]> = group.iter().map(|&i| encoded[i].as_slice()).collect();
            let out = self.encoder.embed(&batch, &mut scratch);
            for (&i, v) in group.iter().zip(out) {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }
}
