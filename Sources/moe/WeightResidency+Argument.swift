import ArgumentParser
import MoEKit

/// `moe forward --weights`: where the kernels read the weights from, as an option's value (`--help` lists
/// each with what it costs). The conformance lives in the executable, like ``KernelVariant``'s.
extension WeightResidency: ExpressibleByArgument {
    public static var allValueDescriptions: [String: String] {
        [WeightResidency.mapped.rawValue: "Read F32/BF16/F16 weights in place from the mapped file: nothing copied, starts at once (quantized formats are packed).",
         WeightResidency.packed.rawValue: "Pack once into the kernels' panels at load: fastest per forward, for layers run many times."]
    }
}
