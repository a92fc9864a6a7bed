//! Reading the model's `config.json` and `model.safetensors`.
//!
//! Only what the encoder needs: the BERT hyper-parameters, and named tensors
//! as `f32` with their shapes checked. The `safetensors` crate parses the
//! file; nothing here depends on a tensor library.
//!
//! The file is memory-mapped and `f32` tensors are used where they lie, in
//! PyTorch's layout: a fresh `sift search` then starts without reading,
//! converting or transposing 90 MB (it was most of its start-up time), and
//! only the word-embedding rows a text uses are ever paged in.

use std::ops::Deref;
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

/// The BERT hyper-parameters of `config.json` (Hugging Face's field names).
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

/// A tensor's values: read in place from the mapped file when stored as
/// aligned little-endian `f32`, else converted once into memory.
pub(crate) enum Floats {
    Mapped {
        file: Arc<Mmap>,
        start: usize,
        len: usize,
    },
    Owned(Vec<f32>),
}

impl Deref for Floats {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            Floats::Owned(v) => v,
            Floats::Mapped { file, start, len } => {
                let bytes = &file[*start..*start + *len * 4];
                // SAFETY: `Weights::get` made this variant only for a range
                // inside the mapping that is 4-byte aligned, on a
                // little-endian machine; every bit pattern is a valid f32,
                // and the mapping (held by the Arc) is never written.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<f32>(), *len) }
            }
        }
    }
}

/// The tensors of one mapped `model.safetensors` file.
pub(crate) struct Weights {
    file: Arc<Mmap>,
    /// Names, types, shapes and byte ranges (checked against the file).
    metadata: Metadata,
    /// Offset of the tensor data in the file (after the JSON header).
    data_start: usize,
}

impl Weights {
    /// Reads and checks the file's header; tensors are read by [`Weights::get`].
    pub fn parse(file: Mmap) -> Result<Self, String> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(&file).map_err(|e| e.to_string())?;
        Ok(Weights {
            data_start: header_len + 8,
            metadata,
            file: Arc::new(file),
        })
    }

    /// The tensor `name`, row-major, which must have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Floats, String> {
        let t = self
            .metadata
            .info(name)
            .ok_or_else(|| format!("no tensor {name}"))?;
        if t.shape != shape {
            return Err(format!(
                "{name} has shape {:?}, expected {shape:?}",
                t.shape
            ));
        }
        // read_metadata checked that the ranges tile the data exactly.
        let (start, end) = (
            self.data_start + t.data_offsets.0,
            self.data_start + t.data_offsets.1,
        );
        let data = &self.file[start..end];
        let in_place = t.dtype == Dtype::F32
            && cfg!(target_endian = "little")
            && (data.as_ptr() as usize).is_multiple_of(std::mem::align_of::<f32>());
        if in_place {
            return Ok(Floats::Mapped {
                file: self.file.clone(),
                start,
                len: data.len() / 4,
            });
        }
        let values: Vec<f32> = match t.dtype {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => return Err(format!("{name} is stored as {other:?}, not a float type")),
        };
        Ok(Floats::Owned(values))
    }
}
