/// Where the fast kernels read a weight stack from.
///
/// Both give the same bits: the kernels multiply the same panel bytes, made once ahead of time or one
/// K-block at a time as they are used.
public enum WeightResidency: String, Sendable, CaseIterable {
    /// One packing pass at load into the kernels' panels, in the stored precision; the file's pages are given
    /// back as they are packed. The fastest per forward: for a layer run many times.
    case packed
    /// No copy: the kernels read the stored stacks where they lie (the mapped checkpoint file), transposing one
    /// K-block of a panel (at most 32 KiB) into a per-thread buffer as they go; loading reads the weights once
    /// to check they are finite. Nothing is allocated for the weights, so a layer starts at once and is
    /// resident at exactly its stored size: for a forward run once. F32, BF16 and F16 stacks only; quantized
    /// formats (FP8, MXFP4, ggml blocks) are always packed, their panels carrying scales per column.
    case mapped
}
