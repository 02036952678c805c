//! Hybrid ranking: the BM25 and the semantic list fused by reciprocal rank ([`Fusion`]) over a fixed rank
//! window ([`crate::RANK_WINDOW`] of each list), read only as deep as the answer needs. A page is answered
//! once the lists are deep enough to fix every document of its window exactly (its rank in both lists is
//! known, or it is known to be absent from one), and nothing unread can still outrank it; a list read to the
//! rank window counts as complete. So page after page follows one ranking, without repeats or gaps.

use std::collections::HashMap;

use tantivy::DocAddress;

use crate::query::Fusion;

/// Where a hit came from: its rank (from 1) and score in each list that holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Ranks {
    pub bm25: Option<(usize, f32)>,
    pub semantic: Option<(usize, f32)>,
}

/// One ranked list as read so far: documents best first with their scores, and whether it holds every
/// document the ranking takes from it (it returned fewer than asked, or was read to the rank window).
pub(crate) struct List {
    pub items: Vec<(DocAddress, f32)>,
    pub complete: bool,
}

impl List {
    /// The most this list can still add to a document it has not listed (rank past its end).
    fn unseen(&self, weight: f32, fusion: Fusion) -> f32 {
        if self.complete {
            0.0
        } else {
            fusion.contribution(self.items.len() + 1, weight)
        }
    }
}

/// The fused ranking of what was read, best first (ties by address), and how much of it is final.
pub(crate) struct Fused {
    pub ranked: Vec<(DocAddress, f32, Ranks)>,
    /// The first `exact` entries are those of the complete lists' fusion, in its order (every entry when
    /// both lists are complete).
    pub exact: usize,
}

pub(crate) fn fuse(bm25: &List, semantic: &List, fusion: Fusion) -> Fused {
    let mut ranks: HashMap<DocAddress, Ranks> = HashMap::new();
    for (i, &(address, score)) in bm25.items.iter().enumerate() {
        ranks.entry(address).or_default().bm25 = Some((i + 1, score));
    }
    for (i, &(address, similarity)) in semantic.items.iter().enumerate() {
        ranks.entry(address).or_default().semantic = Some((i + 1, similarity));
    }
    let part = |rank: Option<(usize, f32)>, weight: f32| rank.map_or(0.0, |(r, _)| fusion.contribution(r, weight));
    let (bm25_unseen, semantic_unseen) =
        (bm25.unseen(fusion.bm25_weight, fusion), semantic.unseen(fusion.semantic_weight, fusion));
    // (address, score so far, the most it can reach, ranks)
    let mut scored: Vec<(DocAddress, f32, f32, Ranks)> = ranks
        .into_iter()
        .map(|(address, r)| {
            let known = part(r.bm25, fusion.bm25_weight) + part(r.semantic, fusion.semantic_weight);
            let missing = if r.bm25.is_none() { bm25_unseen } else { 0.0 }
                + if r.semantic.is_none() { semantic_unseen } else { 0.0 };
            (address, known, known + missing, r)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // The most any document after position i can reach: those listed after it, and those in neither list.
    let mut beyond = vec![bm25_unseen + semantic_unseen; scored.len() + 1];
    for i in (0..scored.len()).rev() {
        beyond[i] = beyond[i + 1].max(scored[i].2);
    }
    let exact = if bm25.complete && semantic.complete {
        scored.len()
    } else {
        scored.iter().enumerate().take_while(|(i, s)| s.1 == s.2 && s.1 > beyond[i + 1]).count()
    };
    Fused { ranked: scored.into_iter().map(|(address, score, _, r)| (address, score, r)).collect(), exact }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u32) -> DocAddress {
        DocAddress::new(0, n)
    }

    fn list(docs: &[u32], complete: bool) -> List {
        List { items: docs.iter().map(|&d| (doc(d), 1.0)).collect(), complete }
    }

    fn order(fused: &Fused) -> Vec<u32> {
        fused.ranked.iter().map(|(a, _, _)| a.doc_id).collect()
    }

    #[test]
    fn complete_lists_are_final_everywhere() {
        let fused = fuse(&list(&[1, 2], true), &list(&[2, 3, 1], true), Fusion::default());
        assert_eq!(order(&fused), vec![2, 1, 3]);
        assert_eq!(fused.exact, 3);
    }

    #[test]
    fn a_document_missing_from_an_unfinished_list_is_not_final() {
        // 1 leads both lists; 2 leads BM25 only and could still be found high in the semantic list.
        let fused = fuse(&list(&[1, 2], false), &list(&[1, 3], false), Fusion::default());
        assert_eq!(order(&fused)[0], 1);
        assert_eq!(fused.exact, 1, "only the document ranked in both lists, above every bound, is final");
    }

    #[test]
    fn the_final_prefix_is_the_complete_fusion_s() {
        // Reading deeper never reorders what was final.
        let bm25: Vec<u32> = (0..200).collect();
        let semantic: Vec<u32> = (0..200).map(|i| (i * 7 + 3) % 200).collect();
        let complete = fuse(&list(&bm25, true), &list(&semantic, true), Fusion::default());
        for depth in [10, 40, 100, 150] {
            let shallow = fuse(&list(&bm25[..depth], false), &list(&semantic[..depth], false), Fusion::default());
            assert_eq!(order(&shallow)[..shallow.exact], order(&complete)[..shallow.exact], "depth {depth}");
        }
        let deep = fuse(&list(&bm25[..150], false), &list(&semantic[..150], false), Fusion::default());
        assert!(deep.exact > 0, "deep lists fix a prefix");
    }
}
