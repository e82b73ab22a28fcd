import ArgumentParser
import MoEKit

@main
struct MoECommand: ParsableCommand {
    static func main() {
        Parallel.retainFreedMemory()
        Self.main(nil)
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
