import ArgumentParser
import MoEKit

@main
struct MoECommand: ParsableCommand {
    /// Parses the command line and runs the subcommand. Help and version go out as argument-parser writes
    /// them; every refusal of the command line itself (an unknown flag, a missing or malformed value, a value
    /// out of range, flags that do not go together) ends like every other error of `moe`: one line on stderr,
    /// exit code 1 (argument-parser's own report adds the usage and would exit 64).
    static func main() {
        Parallel.retainFreedMemory()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ExitCode {
            exit(withError: error)  // the command has reported it
        } catch {
            guard exitCode(for: error) != .success else { exit(withError: error) }  // --help, --version
            printError("moe: error: \(oneLine(message(for: error)))")
            exit(withError: ExitCode.failure)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "moe",
        abstract: "MoEKit: the Mixture-of-Experts layer of Mixtral, Qwen2/3-MoE, DeepSeek-V3, GPT-OSS, OLMoE and Llama-4.",
        subcommands: [RunCommand.self, ForwardCommand.self, RouteCommand.self, InspectCommand.self, BenchCommand.self, EstimateCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

/// Runs `body`, turning any MoEKit error into one line on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("moe: error: \(error)")
        throw ExitCode(1)
    }
}

/// `text` on one line: its lines, trimmed, joined by spaces; a list of `- item` lines (argument-parser's
/// allowed values when there are six or more) becomes `item, item, …`.
func oneLine(_ text: String) -> String {
    var line = "", inList = false
    for part in text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
        let isItem = part.hasPrefix("- ")
        line += line.isEmpty ? "" : inList && isItem ? ", " : " "
        line += isItem ? part.dropFirst(2) : part[...]
        inList = isItem
    }
    return line
}

/// Writes a line to standard error.
func printError(_ line: String) {
    let text = line + "\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
}

/// Prints an `Encodable` value as one JSON object on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
