//! Reading the model's `config.json` and `model.safetensors`.
//!
//! Only what the encoder needs: the BERT hyper-parameters, and named tensors
//! converted to `f32` with their shapes checked. The `safetensors` crate parses
//! the file; nothing here depends on a tensor library.

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

/// The BERT hyper-parameters of `config.json` (Hugging Face's field names).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Config {
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

/// The tensors of one `model.safetensors` file.
pub(super) struct Weights<'a>(SafeTensors<'a>);

impl<'a> Weights<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        SafeTensors::deserialize(bytes)
            .map(Weights)
            .map_err(|e| e.to_string())
    }

    /// The tensor `name` as row-major `f32`, which must have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let t = self
            .0
            .tensor(name)
            .map_err(|_| format!("no tensor {name}"))?;
        if t.shape() != shape {
            return Err(format!(
                "{name} has shape {:?}, expected {shape:?}",
                t.shape()
            ));
        }
        let data = t.data();
        let values: Vec<f32> = match t.dtype() {
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
        Ok(values)
    }

    /// The `[rows × cols]` tensor `name` (PyTorch's `[out × in]` layout),
    /// transposed to row-major `[cols × rows]` for the products.
    pub fn get_transposed(&self, name: &str, rows: usize, cols: usize) -> Result<Vec<f32>, String> {
        Ok(transposed(&self.get(name, &[rows, cols])?, rows, cols))
    }
}

/// Row-major `[rows × cols]` to row-major `[cols × rows]`.
pub(super) fn transposed(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_row_major() {
        // [[1, 2, 3], [4, 5, 6]] -> [[1, 4], [2, 5], [3, 6]]
        let t = transposed(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3);
        assert_eq!(t, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
