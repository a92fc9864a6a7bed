//! Test-only: the operands and the exact product the narrow kernels
//! (`fixed16`, `fixed8`) are checked against.

/// Weights `[n × k]` and activations `[t × k]` of mixed signs and sizes.
pub fn sample(t: usize, n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
    let w = (0..n * k)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 33.0)
        .collect();
    let x = (0..t * k)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 17.0)
        .collect();
    (w, x)
}

/// What the kernels' outputs start from where the residual is added.
pub fn start(i: usize) -> f32 {
    (i % 7) as f32
}

/// Asserts that `got` (`t × n`) is `start + bias + x · wᵀ` (the start only
/// with `residual`) within the rounding of both operands to integers whose
/// largest magnitude is `q`, computed in `f64`.
pub fn assert_within_rounding(
    label: &str,
    got: &[f32],
    (x, w, bias): (&[f32], &[f32], &[f32]),
    (t, n, k): (usize, usize, usize),
    residual: bool,
    q: f64,
) {
    for r in 0..t {
        let xr = &x[r * k..][..k];
        let x_max = xr.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
        for c in 0..n {
            let wc = &w[c * k..][..k];
            let w_max = wc.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
            let exact: f64 = xr.iter().zip(wc).map(|(a, b)| *a as f64 * *b as f64).sum();
            let from = if residual {
                start(r * n + c) as f64
            } else {
                0.0
            };
            let want = from + bias[c] as f64 + exact;
            let bound = k as f64 * (x_max * w_max / q) + 1e-3 * want.abs().max(1.0);
            let err = (got[r * n + c] as f64 - want).abs();
            assert!(
                err <= bound,
                "{label} {t}×{n}×{k} row {r} col {c}: {} vs {want}",
                got[r * n + c]
            );
        }
    }
}
