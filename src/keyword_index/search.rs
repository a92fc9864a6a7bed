//! Queries against the keyword index: BM25 top k, and which query terms each
//! found chunk holds (its coverage), read from the postings instead of
//! re-reading and re-tokenizing the chunk's text.

use std::collections::{HashMap, HashSet};

use tantivy::query::{BooleanQuery, BoostQuery, EnableScoring, PhraseQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, DocSet, Searcher, Term, TERMINATED};

use super::top_k::top_k;
use super::{kw_err, KeywordIndex};
use crate::error::Result;
use crate::search::terms::Terms;

/// One chunk found by a keyword query.
#[derive(Debug, Clone, PartialEq)]
pub struct KeywordMatch {
    /// Chunk id.
    pub chunk_id: i64,
    /// Its note.
    pub note_id: i64,
    /// BM25 score, negated as FTS5 gives it (lower is better).
    pub score: f64,
    /// Share of the query's distinct terms the chunk holds (title, aliases,
    /// headings and body).
    pub coverage: f64,
    /// The same share with each term weighted by its rarity (BM25's IDF):
    /// holding a query's rare words counts for more than holding its common ones.
    pub weighted_coverage: f64,
    /// How many of the query's distinct terms the chunk holds.
    pub terms_held: usize,
    /// How well the note's title matches the query ([`Terms::title_match`]),
    /// None when the note has aliases (they are matched from SQLite).
    pub title_match: Option<f64>,
}

impl KeywordIndex {
    /// The best `limit` chunks for `terms`, best first, only among `allowed`
    /// chunk ids when given (filters apply inside the search, so they never
    /// starve results).
    pub fn search(
        &self,
        terms: &Terms,
        allowed: Option<&HashSet<i64>>,
        limit: usize,
    ) -> Result<Vec<KeywordMatch>> {
        let searcher = self.reader.searcher();
        let doc_freqs = self.doc_freqs(&searcher, terms)?;
        let Some(query) = self.query(terms, &doc_freqs, searcher.num_docs()) else {
            return Ok(Vec::new());
        };
        let weight = query
            .weight(EnableScoring::enabled_from_searcher(&searcher))
            .map_err(kw_err)?;
        let found = top_k(&searcher, weight.as_ref(), limit, allowed)?;
        // The rest reads the same snapshot the search did.
        let coverage = self.coverage(&searcher, terms, &doc_freqs, &found)?;
        let title_matches = self.title_matches(&searcher, terms, &found)?;
        // Each segment's id columns, opened once (opening one decodes its
        // header: per document, that was a tenth of a search).
        let mut columns = HashMap::new();
        let mut out = Vec::with_capacity(found.len());
        for (i, (score, addr)) in found.iter().enumerate() {
            let (chunk_ids, note_ids) = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let fast = searcher.segment_reader(addr.segment_ord).fast_fields();
                    e.insert((
                        fast.u64("chunk_id").map_err(kw_err)?,
                        fast.u64("note_id").map_err(kw_err)?,
                    ))
                }
            };
            let chunk_id = chunk_ids.first(addr.doc_id);
            let note_id = note_ids.first(addr.doc_id);
            if let (Some(chunk_id), Some(note_id)) = (chunk_id, note_id) {
                out.push(KeywordMatch {
                    chunk_id: chunk_id as i64,
                    note_id: note_id as i64,
                    score: -(*score as f64),
                    coverage: coverage[i].0,
                    weighted_coverage: coverage[i].1,
                    terms_held: coverage[i].2,
                    title_match: title_matches[i],
                });
            }
        }
        Ok(out)
    }

    /// For each found document, [`Terms::title_match`] of its note's title,
    /// read from the title field's postings (which of the query's terms the
    /// title holds) and its term count: no title is read or tokenized. None
    /// for notes with aliases.
    fn title_matches(
        &self,
        searcher: &Searcher,
        terms: &Terms,
        found: &[(f32, DocAddress)],
    ) -> Result<Vec<Option<f64>>> {
        if terms.all.is_empty() {
            return Ok(vec![Some(0.0); found.len()]);
        }
        let mut shared = vec![0usize; found.len()];
        let mut out = vec![None; found.len()];
        for (segment_ord, docs) in by_segment(found) {
            let segment = searcher.segment_reader(segment_ord);
            let inverted = segment.inverted_index(self.fields.title).map_err(kw_err)?;
            // `all` holds distinct terms.
            for term in &terms.all {
                let term = Term::from_field_text(self.fields.title, term);
                if let Some(mut postings) = inverted
                    .read_postings(&term, IndexRecordOption::Basic)
                    .map_err(kw_err)?
                {
                    each_holder(&mut postings, &docs, |i| shared[i] += 1);
                }
            }
            let fast = segment.fast_fields();
            let title_terms = fast.u64("title_terms").map_err(kw_err)?;
            let aliases = fast.u64("aliases").map_err(kw_err)?;
            for &(doc, i) in &docs {
                if aliases.first(doc) != Some(0) {
                    continue;
                }
                let Some(t) = title_terms.first(doc) else {
                    continue;
                };
                // As `Terms::title_match` counts them.
                let union = terms.all.len() + t as usize - shared[i];
                out[i] = Some(shared[i] as f64 / union as f64);
            }
        }
        Ok(out)
    }

    /// How many chunks hold each of the query's distinct terms (words and
    /// phrase words): a dictionary look-up per segment each.
    fn doc_freqs<'t>(
        &self,
        searcher: &Searcher,
        terms: &'t Terms,
    ) -> Result<HashMap<&'t str, u64>> {
        let mut out = HashMap::new();
        for term in terms.words.iter().chain(terms.phrases.iter().flatten()) {
            if !out.contains_key(term.as_str()) {
                let df = searcher
                    .doc_freq(&Term::from_field_text(self.fields.terms, term))
                    .map_err(kw_err)?;
                out.insert(term.as_str(), df);
            }
        }
        Ok(out)
    }

    /// The query's words that find candidates: all but those held by more
    /// than the common-word share of `docs` chunks, or the rarest one if
    /// every word is that common.
    fn searched_words<'t>(
        &self,
        terms: &'t Terms,
        doc_freqs: &HashMap<&str, u64>,
        docs: u64,
    ) -> Vec<&'t String> {
        if docs < self.common_words.from_chunks {
            return terms.words.iter().collect();
        }
        let df = |w: &String| doc_freqs.get(w.as_str()).copied().unwrap_or(0);
        let limit = self.common_words.share * docs as f64;
        let kept: Vec<&String> = terms
            .words
            .iter()
            .filter(|w| df(w) as f64 <= limit)
            .collect();
        if !kept.is_empty() || terms.words.is_empty() || !terms.phrases.is_empty() {
            return kept;
        }
        terms
            .words
            .iter()
            .min_by_key(|w| df(w))
            .into_iter()
            .collect()
    }

    /// A union of the query's searched words and its phrases over the terms
    /// field.
    fn query(
        &self,
        terms: &Terms,
        doc_freqs: &HashMap<&str, u64>,
        docs: u64,
    ) -> Option<Box<dyn Query>> {
        let field = self.fields.terms;
        let words = self.searched_words(terms, doc_freqs, docs);
        let mut parts: Vec<Box<dyn Query>> = words
            .iter()
            .map(|w| {
                Box::new(TermQuery::new(
                    Term::from_field_text(field, w),
                    IndexRecordOption::WithFreqs,
                )) as Box<dyn Query>
            })
            .collect();
        if self.title_weight > 0.0 {
            for w in &words {
                let title = TermQuery::new(
                    Term::from_field_text(self.fields.title, w),
                    IndexRecordOption::Basic,
                );
                parts.push(Box::new(BoostQuery::new(
                    Box::new(title),
                    self.title_weight,
                )));
            }
        }
        for phrase in &terms.phrases {
            let words: Vec<Term> = phrase
                .iter()
                .map(|w| Term::from_field_text(field, w))
                .collect();
            parts.push(Box::new(PhraseQuery::new(words)));
        }
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Box::new(BooleanQuery::union(parts))),
        }
    }

    /// For each found document, the share of the query's distinct terms
    /// (words and phrase words) it holds, plain and weighted by IDF, and their
    /// number: one pass over each term's postings per segment, seeking only
    /// to the found documents.
    fn coverage(
        &self,
        searcher: &Searcher,
        terms: &Terms,
        doc_freqs: &HashMap<&str, u64>,
        found: &[(f32, DocAddress)],
    ) -> Result<Vec<(f64, f64, usize)>> {
        let distinct: HashSet<&String> = terms
            .words
            .iter()
            .chain(terms.phrases.iter().flatten())
            .collect();
        let mut held = vec![(0usize, 0f64); found.len()];
        if distinct.is_empty() {
            return Ok(vec![(0.0, 0.0, 0); found.len()]);
        }
        // BM25's IDF over the whole index.
        let docs = searcher.num_docs() as f64;
        let mut idf: HashMap<&String, f64> = HashMap::with_capacity(distinct.len());
        for term in &distinct {
            let df = doc_freqs.get(term.as_str()).copied().unwrap_or(0) as f64;
            idf.insert(*term, (1.0 + (docs - df + 0.5) / (df + 0.5)).ln());
        }
        let total_idf: f64 = idf.values().sum::<f64>().max(f64::EPSILON);
        for (segment_ord, docs) in by_segment(found) {
            let inverted = searcher
                .segment_reader(segment_ord)
                .inverted_index(self.fields.terms)
                .map_err(kw_err)?;
            for term in &distinct {
                let weight = idf[term];
                let term = Term::from_field_text(self.fields.terms, term);
                if let Some(mut postings) = inverted
                    .read_postings(&term, IndexRecordOption::Basic)
                    .map_err(kw_err)?
                {
                    each_holder(&mut postings, &docs, |i| {
                        held[i].0 += 1;
                        held[i].1 += weight;
                    });
                }
            }
        }
        Ok(held
            .into_iter()
            .map(|(n, w)| (n as f64 / distinct.len() as f64, w / total_idf, n))
            .collect())
    }
}

/// Found documents per segment, each with its index in `found`, in document
/// order (postings only seek forward).
fn by_segment(found: &[(f32, DocAddress)]) -> HashMap<u32, Vec<(DocId, usize)>> {
    let mut by_segment: HashMap<u32, Vec<(DocId, usize)>> = HashMap::new();
    for (i, (_, addr)) in found.iter().enumerate() {
        by_segment
            .entry(addr.segment_ord)
            .or_default()
            .push((addr.doc_id, i));
    }
    by_segment
        .values_mut()
        .for_each(|docs| docs.sort_unstable());
    by_segment
}

/// Calls `held(i)` for each of `docs` (in document order) that `postings`
/// holds.
fn each_holder(postings: &mut impl DocSet, docs: &[(DocId, usize)], mut held: impl FnMut(usize)) {
    for &(doc, i) in docs {
        let at = if postings.doc() >= doc {
            postings.doc()
        } else {
            postings.seek(doc)
        };
        if at == TERMINATED {
            break;
        }
        if at == doc {
            held(i);
        }
    }
}
