use std::ops::Range;

/// Groups items into batches whose padded size (`items × longest item`) stays within `max_tokens`, after
/// ordering them by length so that items of similar length share a batch and little padding is computed.
///
/// Returns batches of indices into `lengths`; every index appears exactly once. An item longer than the
/// budget gets a batch of its own.
pub fn token_budget_batches(lengths: &[usize], max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        // Sorted longest first, so the first item of a batch fixes its padded width.
        let width = lengths[order[start]].max(1);
        let fits = (max_tokens / width).max(1);
        let end = (start + fits).min(order.len());
        batches.push(order[Range { start, end }].to_vec());
        start = end;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_and_within_budget() {
        let lengths = [5, 300, 17, 17, 2, 64, 9, 128, 1, 33];
        let batches = token_budget_batches(&lengths, 256);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for batch in &batches {
            let width = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(batch.len() == 1 || batch.len() * width <= 256, "{batch:?} over budget");
        }
        // The over-long item sits alone.
        assert!(batches.iter().any(|b| b == &vec![1]));
    }

    #[test]
    fn similar_lengths_share_batches() {
        let lengths = [10, 100, 11, 101, 12, 102];
        let batches = token_budget_batches(&lengths, 310);
        assert_eq!(batches, vec![vec![5, 3, 1], vec![4, 2, 0]]);
    }

    #[test]
    fn empty_input_gives_no_batches() {
        assert!(token_budget_batches(&[], 100).is_empty());
    }
}
