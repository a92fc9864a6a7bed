//! The local embedder: all-MiniLM-L6-v2 run on the CPU with candle.
//!
//! Matches sentence-transformers' pipeline for this model: BERT word pieces with
//! `[CLS]`/`[SEP]`, at most 256 positions, mean pooling over the attention mask,
//! L2 normalisation. The shipped `tokenizer.json` hard-codes truncation and padding
//! at 128 tokens; both are switched off here (padding is done per sub-batch to its
//! longest input, and over-long input is rejected, never cut).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use super::{normalize, Embedder};
use crate::error::{Error, ErrorKind, Result};
use crate::model::MODEL_FILES;

/// Identifier of this embedder's vector space.
pub const MODEL_ID: &str = "local/all-MiniLM-L6-v2";
/// Length of every vector.
pub const DIMENSIONS: usize = 384;
/// Positions the model accepts, `[CLS]` and `[SEP]` included.
pub const MAX_SEQUENCE: usize = 256;
/// Inputs per forward pass.
const SUB_BATCH: usize = 32;

/// all-MiniLM-L6-v2 on the CPU.
pub struct LocalEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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

        // Read the weights into memory rather than mapping them: candle copies every
        // tensor out anyway, and a mapping only adds page faults on the way.
        let weights_path = model_dir.join("model.safetensors");
        let weights = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| invalid("model.safetensors", e.to_string()))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| invalid("model.safetensors", e.to_string()))?;

        Ok(LocalEmbedder {
            model,
            tokenizer,
            device,
        })
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

    /// Embeds one padded sub-batch; returns one unit vector per input.
    fn forward(&self, batch: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; rows * width];
        let mut mask = vec![0u32; rows * width];
        for (r, seq) in batch.iter().enumerate() {
            ids[r * width..r * width + seq.len()].copy_from_slice(seq);
            mask[r * width..r * width + seq.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;

        // Mean over real tokens only.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let mut out = mean.to_vec2::<f32>()?;
        out.iter_mut().for_each(|v| normalize(v));
        Ok(out)
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
        let encoded = self.encode_all(texts)?;
        // Similar lengths together waste little on padding.
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());

        let mut vectors = vec![Vec::new(); encoded.len()];
        for group in order.chunks(SUB_BATCH) {
            let batch: Vec<&[u32]> = group.iter().map(|&i| encoded[i].as_slice()).collect();
            let out = self
                .forward(&batch)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("{MODEL_ID} failed: {e}")))?;
            for (&i, v) in group.iter().zip(out) {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut out = self.embed_documents(&[text.to_string()])?;
        Ok(out.pop().unwrap_or_default())
    }
}
