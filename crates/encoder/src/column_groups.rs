//! A product of a few rows (a query's word pieces) split by columns instead
//! of rows: a few rows are one task when split by rows, so one core would do
//! all of it. Each task computes every row for its group of columns into a
//! buffer of its own; the buffers are then merged into the output.

use rayon::prelude::*;

/// How a group's results go into the output.
#[derive(Clone, Copy)]
pub enum Merge {
    /// Replace what is there.
    Copy,
    /// Add to what is there (an accumulating product, or a residual).
    Add,
}

/// Splits `dst` (rows of `n` columns) into groups of `width` columns (the
/// last may be narrower), over the pool when `parallel`. `compute(c0, out)`
/// fills `out` with every row's columns `c0..c0 + out.len() / rows`.
pub fn by_column_groups(
    dst: &mut [f32],
    n: usize,
    width: usize,
    parallel: bool,
    merge: Merge,
    compute: impl Fn(usize, &mut [f32]) + Sync,
) {
    assert!(n > 0 && width > 0 && dst.len().is_multiple_of(n));
    let rows = dst.len() / n;
    let group = |c0: usize| {
        let mut out = vec![0f32; rows * width.min(n - c0)];
        compute(c0, &mut out);
        (c0, out)
    };
    let parts: Vec<(usize, Vec<f32>)> = if parallel {
        (0..n).into_par_iter().step_by(width).map(group).collect()
    } else {
        (0..n).step_by(width).map(group).collect()
    };
    for (c0, out) in parts {
        let cw = out.len() / rows;
        for (d, o) in dst.chunks_exact_mut(n).zip(out.chunks_exact(cw)) {
            let d = &mut d[c0..c0 + cw];
            match merge {
                Merge::Copy => d.copy_from_slice(o),
                Merge::Add => d.iter_mut().zip(o).for_each(|(d, v)| *d += v),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column is computed once, in its place, merged as asked, on one
    /// thread or several, with a narrower last group.
    #[test]
    fn every_column_lands_in_its_place() {
        let (rows, n) = (3, 40);
        for parallel in [false, true] {
            for (merge, start) in [(Merge::Copy, 7.0), (Merge::Add, 0.0), (Merge::Add, 5.0)] {
                let mut dst = vec![start; rows * n];
                by_column_groups(&mut dst, n, 16, parallel, merge, |c0, out| {
                    let cw = out.len() / rows;
                    for (r, row) in out.chunks_exact_mut(cw).enumerate() {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = (r * 1000 + c0 + j) as f32;
                        }
                    }
                });
                for r in 0..rows {
                    for c in 0..n {
                        let kept = if matches!(merge, Merge::Add) {
                            start
                        } else {
                            0.0
                        };
                        assert_eq!(dst[r * n + c], kept + (r * 1000 + c) as f32);
                    }
                }
            }
        }
    }
}
