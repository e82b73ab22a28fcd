import ArgumentParser
import MoEKit

/// `--threads`, the option of every command that computes (`moe run`, `moe forward`, `moe bench`): one
/// declaration, one range (``Flags/threads``) and one default, used through `@OptionGroup`.
struct ThreadOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: Flags.threads.help("Worker threads (default: all cores)."), transform: Flags.threads.parse)
    var threads: Int?

    /// `--threads`, or every core the process may use.
    var threadCount: Int { threads ?? Parallel.defaultThreadCount }
}
