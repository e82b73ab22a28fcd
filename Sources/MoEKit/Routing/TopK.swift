/// Top-k selection over one row of scores: the `k` largest values in descending order, as
/// `torch.topk(sorted=True)` returns them. Ties go to the **lower** index (PyTorch leaves ties
/// implementation-defined; MoEKit fixes the rule so results are reproducible).
///
/// O(n·k), which beats sorting for the k ≤ 8 of real routers.
@inlinable
func topK(_ scores: UnsafeBufferPointer<Float>, _ k: Int, into indices: UnsafeMutableBufferPointer<Int>) {
    var filled = 0
    for i in 0..<scores.count {
        let v = scores[i]
        // Find the insertion point among the current best: strictly greater moves ahead, so an
        // equal value later in the row stays behind the earlier (lower-index) one.
        var position = filled
        while position > 0 && v > scores[indices[position - 1]] { position -= 1 }
        if position >= k { continue }
        var j = min(filled, k - 1)
        while j > position { indices[j] = indices[j - 1]; j -= 1 }
        indices[position] = i
        if filled < k { filled += 1 }
    }
}

/// Convenience over arrays (tests, small tools).
func topK(_ scores: [Float], _ k: Int) -> [Int] {
    var out = [Int](repeating: 0, count: k)
    scores.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { topK(s, k, into: $0) } }
    return out
}
