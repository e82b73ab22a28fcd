import ArgumentParser
import MoEKit

/// `--mesh EPxTP` (`2x2`, `4X1`) as an option's value: two positive integers around one `x`, as
/// ``MeshShape/init(parsing:)`` reads them. Anything else is refused as the command line is read, with
/// the flag, the value and the expected form (the option's value name is `EPxTP`); the ceiling on
/// EP · TP is checked by ``ParallelOptions/validate()``, which can say what the ceiling is.
///
/// The conformance lives in the executable, the only module that parses command lines, so MoEKit does not
/// depend on argument-parser. It is not retroactive: MoEKit is in this package.
extension MeshShape: ExpressibleByArgument {
    public init?(argument: String) {
        guard let mesh = try? MeshShape(parsing: argument) else { return nil }
        self = mesh
    }
}
