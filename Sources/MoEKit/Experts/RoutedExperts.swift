/// The routed experts end to end: `projection_to_intermediate`, then `projection_to_output` and the
/// weighted combine. The fast variant hands the intermediate from one projection to the next in the row
/// tiles the second one reads (BF16-compute: already rounded to bf16 pairs), so no row-major `[rows, F]`
/// matrix is written, re-read and repacked. Results are bit-identical to calling the two projections.
enum RoutedExperts {
    /// `[plan.tokenCount, H]`; see ``ProjectionToIntermediate`` and ``ProjectionToOutput`` for the arguments.
    static func run(_ variant: KernelVariant, input: Tensor<Float>, plan: RoutingPlan, experts: ExpertWeights,
                    scalesInput: Bool = false, weightsOutputs: Bool = true, threads: Int) throws(TensorError) -> Tensor<Float> {
        switch variant {
        case .reference:
            let a = try ProjectionToIntermediate.run(.reference, input: input, plan: plan, experts: experts,
                                                     scalesInput: scalesInput, threads: threads)
            return try ProjectionToOutput.run(.reference, intermediate: a, plan: plan, experts: experts,
                                              weightsOutputs: weightsOutputs, threads: threads)
        case .fast:
            try ProjectionToIntermediate.check(input: input, plan: plan, experts: experts)
            let rows = ProjectionToIntermediate.packed(input: input, plan: plan, experts: experts, scalesInput: scalesInput,
                                                       threads: threads, format: .init(experts.down))
            var output = Tensor<Float>(shape: [plan.tokenCount, experts.hiddenSize], repeating: .nan)
            ProjectionToOutput.fast(rows: rows, plan: plan, experts: experts, weightsOutputs: weightsOutputs,
                                    threads: threads, into: &output)
            return output
        }
    }
}
