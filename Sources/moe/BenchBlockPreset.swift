import ArgumentParser
import MoECost

/// `moe estimate --preset`: the name of one of `moe bench`'s preset blocks (``BlockShape/presetNames``),
/// refused as the command line is read if it is not one, and listed by `--help`. The list stays
/// MoECost's; this type only checks a name against it.
struct BenchBlockPreset: ExpressibleByArgument, CustomStringConvertible {
    let name: String

    init?(argument: String) {
        guard BlockShape.presetNames.contains(argument) else { return nil }
        name = argument
    }

    static var allValueStrings: [String] { BlockShape.presetNames }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
    var description: String { name }
}
