import ArgumentParser
import MoEKit

/// `moe forward --kernel`: the library's kernel variants as an option's value, so argument-parser refuses
/// any other word as it reads the command line and `--help` lists each variant with what it is.
///
/// The conformance lives in the executable, the only module that parses command lines, so MoEKit does not
/// depend on argument-parser. It is not retroactive: MoEKit is in this package.
extension KernelVariant: ExpressibleByArgument {
    public static var allValueDescriptions: [String: String] {
        [KernelVariant.reference.rawValue: "Plain loops, Double accumulation: the specification and oracle.",
         KernelVariant.fast.rawValue: "Packed panels, SIMD, threads, Float accumulation."]
    }
}
