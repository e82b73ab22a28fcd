import ArgumentParser
import MoEKit

/// `moe run --preset`: the name of one of MoEKit's built-in architecture presets
/// (``ModelConfig/presetNames``), refused as the command line is read if it is not one, and listed by
/// `--help`. The list stays the library's; this type only checks a name against it.
struct ArchitecturePreset: ExpressibleByArgument, CustomStringConvertible {
    let name: String

    init?(argument: String) {
        guard ModelConfig.presetNames.contains(argument) else { return nil }
        name = argument
    }

    static var allValueStrings: [String] { ModelConfig.presetNames }
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }
    var description: String { name }
}
