import ArgumentParser
import MoECost

/// `moe estimate --ffn-scaling`: MoECost's expert-width rules as an option's value, so argument-parser
/// refuses any other word as it reads the command line and `--help` lists each rule with its width.
///
/// The conformance lives in the executable, the only module that parses command lines, so MoECost does not
/// depend on argument-parser. It is not retroactive: MoECost is in this package.
extension FFNScaling: ExpressibleByArgument {
    public static var allValueDescriptions: [String: String] {
        [FFNScaling.balanced.rawValue: "d_ff / E: the experts hold as many parameters as the dense FFN.",
         FFNScaling.compute.rawValue: "d_ff / √E: √E times the dense FFN's parameters.",
         FFNScaling.capacity.rawValue: "d_ff: every expert as wide as the dense FFN."]
    }
}
