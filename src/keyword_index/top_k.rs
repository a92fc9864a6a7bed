//! The best k documents of a query over every segment, the segments walked
//! one after another with the threshold carried over.
//!
//! Why not tantivy's `TopDocs`: it collects each segment's own top k from a
//! threshold of nothing, so with n large segments block-max WAND scores about
//! n times the documents one segment would need. An app indexing note by note
//! always has several segments. Starting each segment at the k-th best score
//! found so far prunes what cannot enter the final top k anyway: the answer
//! is the same, for less work.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashSet};

use tantivy::query::Weight;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentReader};

use super::kw_err;
use crate::error::Result;

/// A found document, ordered by score, then by address (the earlier first).
#[derive(Clone, Copy, PartialEq)]
struct Found(Score, DocAddress);

impl Eq for Found {}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` best (score, address) of `weight`, best first, among the live
/// documents whose `chunk_id` is in `allowed` (when given). Larger segments
/// go first: their k-th best score is the highest threshold to start the
/// others from.
pub(super) fn top_k(
    searcher: &Searcher,
    weight: &dyn Weight,
    k: usize,
    allowed: Option<&HashSet<i64>>,
) -> Result<Vec<(Score, DocAddress)>> {
    let k = k.max(1);
    // A min-heap of the best k so far.
    let mut best: BinaryHeap<Reverse<Found>> = BinaryHeap::with_capacity(k + 1);
    let mut order: Vec<(u32, &SegmentReader)> = searcher
        .segment_readers()
        .iter()
        .enumerate()
        .map(|(ord, reader)| (ord as u32, reader))
        .collect();
    order.sort_by_key(|(_, reader)| Reverse(reader.num_docs()));
    for (ord, reader) in order {
        let threshold = |best: &BinaryHeap<Reverse<Found>>| match best.peek() {
            Some(Reverse(Found(score, _))) if best.len() == k => *score,
            _ => Score::MIN,
        };
        let start = threshold(&best);
        let alive = reader.alive_bitset();
        let chunk_ids = match allowed {
            Some(_) => Some(reader.fast_fields().u64("chunk_id").map_err(kw_err)?),
            None => None,
        };
        let keep = |doc: DocId| match (allowed, &chunk_ids) {
            (Some(allowed), Some(ids)) => ids
                .first(doc)
                .is_some_and(|id| allowed.contains(&(id as i64))),
            _ => true,
        };
        weight
            .for_each_pruning(start, reader, &mut |doc, score| {
                let deleted = alive.is_some_and(|a| a.is_deleted(doc));
                if !deleted && keep(doc) {
                    best.push(Reverse(Found(score, DocAddress::new(ord, doc))));
                    if best.len() > k {
                        best.pop();
                    }
                }
                threshold(&best)
            })
            .map_err(kw_err)?;
    }
    let mut out: Vec<Found> = best.into_iter().map(|Reverse(f)| f).collect();
    out.sort_by(|a, b| b.cmp(a));
    Ok(out.into_iter().map(|Found(s, a)| (s, a)).collect())
}

#[cfg(test)]
mod tests {
    use tantivy::collector::{FilterCollector, TopDocs};
    use tantivy::query::{BooleanQuery, EnableScoring, Query, TermQuery};
    use tantivy::schema::{IndexRecordOption, Schema, FAST, INDEXED, TEXT};
    use tantivy::{doc, Index, IndexWriter, Term};

    use super::*;

    /// Pseudo-random words from a small vocabulary (so scores tie too),
    /// spread over several segments with some documents deleted.
    fn index_of_segments(segments: usize, per_segment: usize, seed: u64) -> (Index, Schema) {
        let mut builder = Schema::builder();
        let terms = builder.add_text_field("terms", TEXT);
        let chunk_id = builder.add_u64_field("chunk_id", FAST | INDEXED);
        let schema = builder.build();
        let index = Index::create_in_ram(schema.clone());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let mut id = 0u64;
        for _ in 0..segments {
            for _ in 0..per_segment {
                let words: Vec<String> = (0..1 + next() % 12)
                    .map(|_| format!("w{}", next() % 40))
                    .collect();
                writer
                    .add_document(doc!(terms => words.join(" "), chunk_id => id))
                    .unwrap();
                id += 1;
            }
            writer.commit().unwrap();
        }
        for gone in (0..id).step_by(7) {
            writer.delete_term(Term::from_field_u64(chunk_id, gone));
        }
        writer.commit().unwrap();
        (index, schema)
    }

    fn union(schema: &Schema, words: &[&str]) -> Box<dyn Query> {
        let field = schema.get_field("terms").unwrap();
        Box::new(BooleanQuery::union(
            words
                .iter()
                .map(|w| {
                    Box::new(TermQuery::new(
                        Term::from_field_text(field, w),
                        IndexRecordOption::WithFreqs,
                    )) as Box<dyn Query>
                })
                .collect(),
        ))
    }

    /// Scores best first, rounded so that equal scores compare equal.
    fn scores(found: &[(Score, DocAddress)]) -> Vec<u64> {
        found
            .iter()
            .map(|(s, _)| (*s as f64 * 1e4).round() as u64)
            .collect()
    }

    #[test]
    fn carried_thresholds_find_what_each_segments_own_top_k_finds() {
        for (segments, seed) in [(1, 1), (3, 2), (5, 3), (8, 4)] {
            let (index, schema) = index_of_segments(segments, 300, seed);
            let searcher = index.reader().unwrap().searcher();
            assert_eq!(searcher.segment_readers().len(), segments);
            for words in [&["w1"][..], &["w2", "w3"], &["w4", "w5", "w6", "w7", "w39"]] {
                let query = union(&schema, words);
                let weight = query
                    .weight(EnableScoring::enabled_from_searcher(&searcher))
                    .unwrap();
                for k in [1, 10, 100] {
                    let ours = top_k(&searcher, weight.as_ref(), k, None).unwrap();
                    let theirs = searcher
                        .search(&query, &TopDocs::with_limit(k).order_by_score())
                        .unwrap();
                    assert_eq!(scores(&ours), scores(&theirs), "{words:?} k {k}");
                    // Same documents where scores do not tie at the cut.
                    let last = scores(&theirs).last().copied();
                    let above = |found: &[(Score, DocAddress)]| {
                        let mut a: Vec<DocAddress> = found
                            .iter()
                            .filter(|f| Some((f.0 as f64 * 1e4).round() as u64) != last)
                            .map(|f| f.1)
                            .collect();
                        a.sort();
                        a
                    };
                    assert_eq!(above(&ours), above(&theirs));
                }
            }
        }
    }

    #[test]
    fn only_allowed_chunks_are_found() {
        let (index, schema) = index_of_segments(4, 200, 9);
        let searcher = index.reader().unwrap().searcher();
        let query = union(&schema, &["w1", "w2", "w3"]);
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .unwrap();
        let allowed: HashSet<i64> = (0..800).filter(|id| id % 3 == 0).collect();
        let ours = top_k(&searcher, weight.as_ref(), 20, Some(&allowed)).unwrap();
        let only = allowed.clone();
        let theirs = searcher
            .search(
                &query,
                &FilterCollector::new(
                    "chunk_id".to_string(),
                    move |id: u64| only.contains(&(id as i64)),
                    TopDocs::with_limit(20).order_by_score(),
                ),
            )
            .unwrap();
        assert_eq!(scores(&ours), scores(&theirs));
        assert_eq!(ours.len(), 20);
        for (_, addr) in &ours {
            let ids = searcher
                .segment_reader(addr.segment_ord)
                .fast_fields()
                .u64("chunk_id")
                .unwrap();
            let id = ids.first(addr.doc_id).unwrap() as i64;
            assert!(allowed.contains(&id) && id % 7 != 0, "chunk {id}");
        }
    }
}
