import Foundation
import MoECost
import MoEKit
import MoETestSupport
import Testing

/// A `moe` command line with one bad flag value, and the words its one-line refusal must hold: the flag,
/// the value and the range (or the counts that would work).
struct BadFlag: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    var mentions: [String]
    var environment: [String: String] = [:]
    var testDescription: String { arguments.map { $0.isEmpty ? "''" : $0 }.joined(separator: " ") }

    static let olmoe = fixturesDirectory + "/olmoe/checkpoint"
    static let qwen2MoE = fixturesDirectory + "/qwen2-moe/checkpoint"

    /// Enough of each command that only the flag under test is wrong; nothing here is read before the flags
    /// are parsed.
    static let commands: [String: [String]] = [
        "run": ["run"],
        "forward": ["forward", "--checkpoint", "/nonexistent", "--input", "/nonexistent/in.safetensors", "--output", "/nonexistent/out.safetensors"],
        "route": ["route", "--input", "/nonexistent/in.safetensors", "--output", "/nonexistent/out.safetensors"],
        "bench": ["bench", "--suite", "smoke"],
        "estimate": ["estimate", "--config", qwen2MoE + "/config.json"],
    ]

    /// Integers too small, too large for the range, too large for `Int` (2^40, 2^63), and not integers at all.
    static let badIntegers = ["-1", "1099511627776", "9223372036854775808", "abc", "1.5", ""]
    static let badNumbers = ["-1", "nan", "inf", "1e400", "abc", ""]

    /// Every value of `values` for `flag` of `command`; the refusal names the flag, the value and `range`.
    static func values(_ command: String, _ flag: String, _ range: String, _ values: [String], with extra: [String] = []) -> [BadFlag] {
        values.map { BadFlag(arguments: (commands[command] ?? []) + extra + [flag, $0], mentions: [flag, "'\($0)'", range]) }
    }

    static let outOfRange: [BadFlag] = [
        values("run", "--tokens", "1...65536", badIntegers + ["0", "65537"]),
        values("run", "--threads", "1...1024", badIntegers + ["0", "1025"]),
        values("run", "--devices", "1...1024", badIntegers + ["0"]),
        values("run", "--seed", "0...18446744073709551615", ["-1", "18446744073709551616", "abc", "1.5", ""]),
        values("run", "--repeats", "1...1000", badIntegers + ["0"]),
        values("run", "--check-tokens", "1...65536", badIntegers + ["0"]),
        values("run", "--layer", "0...65535", badIntegers, with: ["--checkpoint", qwen2MoE]),
        values("run", "--timeout", "0.001...86400.0", badNumbers + ["0"]),
        values("run", "--mesh", "EPxTP", ["0x2", "2x0", "-1x2", "2x", "x2", "2x2x2", "abc", "", "1024x2", "4611686018427387904x4"]),
        values("forward", "--layer", "0...65535", badIntegers),
        values("forward", "--threads", "1...1024", ["0", "1099511627776", "abc"], with: ["--layer", "0"]),
        values("forward", "--devices", "1...1024", ["0", "9223372036854775808", "1.5"], with: ["--layer", "0"]),
        values("forward", "--mesh", "EPxTP", ["0x1", "abc", ""], with: ["--layer", "0"]),
        values("route", "--num-experts", "1...65536", badIntegers + ["0"]),
        values("route", "--devices", "1...1024", badIntegers + ["0"], with: ["--num-experts", "8"]),
        values("bench", "--threads", "1...1024", badIntegers + ["0"]),
        values("bench", "--repeats", "1...100", badIntegers + ["0", "101"]),
        values("bench", "--devices", "1...1024", badIntegers + ["0"]),
        values("estimate", "--tokens", "1...1073741824", badIntegers + ["0"]),
        values("estimate", "--devices", "1...65536", badIntegers + ["0"]),
        values("estimate", "--experts", "1...65536", badIntegers + ["0"], with: ["--ffn-scaling", "balanced"]),
        values("estimate", "--top-k", "1...65536", badIntegers + ["0"], with: ["--ffn-scaling", "balanced"]),
        values("estimate", "--skew", "0.0...100.0", badNumbers + ["101"]),
    ].flatMap { $0 }

    /// Each of `values` for `flag`, which takes one word of a closed set: the refusal names the flag, the value
    /// and every word of `allowed`.
    static func choices(_ arguments: [String], _ flag: String, _ values: [String], allowed: [String]) -> [BadFlag] {
        values.map { BadFlag(arguments: arguments + [flag, $0], mentions: [flag, "'\($0)'"] + allowed) }
    }

    /// Words outside each closed set: misspelt, in another case, from a neighbouring set, empty.
    static let badChoices: [BadFlag] = [
        choices(commands["forward", default: []] + ["--layer", "0"], "--kernel", ["slow", "Fast", "simd", ""],
                allowed: KernelVariant.allCases.map(\.rawValue)),
        choices(commands["forward", default: []] + ["--layer", "0"], "--weights", ["copied", "Mapped", ""],
                allowed: WeightResidency.allCases.map(\.rawValue)),
        choices(["bench"], "--suite", ["nope", "Quick", "realsize2", ""], allowed: ["quick", "full", "realsize", "stress", "smoke"]),
        choices(commands["estimate", default: []], "--ffn-scaling", ["nope", "Balanced", ""], allowed: FFNScaling.allCases.map(\.rawValue)),
        choices(["estimate"], "--preset", ["nope", "qwen3-moe", ""], allowed: BlockShape.presetNames),
        choices(["estimate", "--preset", "qwen3"], "--dtype", ["f16", "fp8", "mxfp4", "nope", ""], allowed: ["f32", "bf16"]),
        choices(["estimate", "--preset", "qwen3"], "--compute", ["f16", "nope"], allowed: ["f32", "bf16"]),
        choices(["run"], "--preset", ["nope", "qwen3", "Mixtral", ""], allowed: ModelConfig.presetNames),
    ].flatMap { $0 }

    /// Values in their flag's range that the model, or another flag, rules out.
    static let outOfModel: [BadFlag] = [
        BadFlag(arguments: ["run", "--checkpoint", qwen2MoE, "--layer", "3"], mentions: ["--layer 3", "0...2"]),
        BadFlag(arguments: ["run", "--checkpoint", qwen2MoE, "--devices", "3"], mentions: ["--devices 3", "divisible", "1, 2, 4, 8"]),
        BadFlag(arguments: ["run", "--checkpoint", qwen2MoE, "--mesh", "3x1"], mentions: ["--mesh 3x1", "divisible", "1, 2, 4, 8"]),
        BadFlag(arguments: ["run", "--checkpoint", qwen2MoE, "--devices", "2", "--mesh", "2x1"], mentions: ["--devices", "--mesh"]),
        BadFlag(arguments: ["run", "--checkpoint", qwen2MoE, "--tokens", "65536"], mentions: ["--tokens 65536", "memory"],
                environment: ["MOEKIT_MEMORY_AVAILABLE": "1000000"]),
        BadFlag(arguments: commands["forward", default: []] + ["--layer", "0", "--devices", "2", "--mesh", "2x1"], mentions: ["--devices", "--mesh"]),
        BadFlag(arguments: ["forward", "--checkpoint", olmoe, "--layer", "2", "--input", "/nonexistent/in.safetensors", "--output", "/nonexistent/out"],
                mentions: ["--layer 2", "0...1"]),
        BadFlag(arguments: ["forward", "--checkpoint", olmoe, "--layer", "0", "--devices", "16", "--input", "/nonexistent/in.safetensors",
                            "--output", "/nonexistent/out"], mentions: ["--devices 16", "divisible", "1, 2, 4, 8"]),
        BadFlag(arguments: commands["route", default: []] + ["--num-experts", "8", "--devices", "3"], mentions: ["--devices 3", "--num-experts 8", "divisible"]),
        BadFlag(arguments: commands["route", default: []] + ["--num-experts", "8", "--devices", "16"], mentions: ["--devices 16", "--num-experts 8", "divisible"]),
        BadFlag(arguments: ["bench", "--suite", "smoke", "--devices", "3"], mentions: ["--devices 3", "4 experts", "divisible"]),
        BadFlag(arguments: ["bench", "--suite", "realsize", "--devices", "2"], mentions: ["--devices 2", "realsize"]),
        BadFlag(arguments: ["estimate", "--preset", "qwen3", "--tokens", "65537"], mentions: ["--tokens 65537", "--preset", "1...65536"]),
        BadFlag(arguments: commands["estimate", default: []] + ["--ffn-scaling", "balanced", "--experts", "2", "--top-k", "3"],
                mentions: ["--top-k 3", "--experts 2"]),
    ]
}

@Suite("moe flags", .timeLimit(.minutes(1)))
struct CLIFlagTests {
    /// Issue 13: a malformed or out-of-range flag used to print argument-parser's four-line report (exit 64), or
    /// pass and then crash (`--mesh` overflowing EP·TP, `moe estimate --tokens 2^62`), hang (`--preset` with a huge
    /// `--tokens`) or allocate `[T, H]` for any `--tokens`. Every one now ends in one line on stderr that names the
    /// flag, the value and the range, exit code 1, nothing on stdout, before any work.
    @Test("a bad flag value ends in one line naming it", arguments: BadFlag.outOfRange + BadFlag.badChoices + BadFlag.outOfModel)
    func refusesBadFlag(_ bad: BadFlag) throws {
        let result = try MoEProcess.run(bad.arguments, environment: bad.environment)
        #expect(result.exitedNormally, "terminated by a signal")
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty, "stdout: \(result.stdout)")
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(result.stderr)")
        #expect(result.stderr.hasPrefix("moe: error: "), "stderr: \(result.stderr)")
        for words in bad.mentions { #expect(result.stderr.contains(words), "\(words) is not in: \(result.stderr)") }
    }

    @Test("--help still prints the usage, with the ranges, and exits 0")
    func helpShowsRanges() throws {
        let result = try MoEProcess.run(["run", "--help"])
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("(1...65536; default: 512)"), "stdout: \(result.stdout)")
    }

    /// T = 0 is a batch, not an error, where a forward is asked for: moe forward and moe route write empty tensors.
    @Test("zero tokens give empty outputs", arguments: ["forward", "route"])
    func zeroTokens(_ command: String) throws {
        let scratch = try ScratchDirectory()
        let (input, output) = (scratch.path + "/in.safetensors", scratch.path + "/out.safetensors")
        let arguments: [String]
        if command == "forward" {
            try SafetensorsWriter.write([("hidden_states", .f32(Tensor(shape: [0, 32])))], to: input)
            arguments = ["forward", "--checkpoint", BadFlag.olmoe, "--layer", "0", "--input", input, "--output", output, "--devices", "2"]
        } else {
            try SafetensorsWriter.write([("selected_experts", .i32(Tensor(shape: [0, 2]))), ("routing_weights", .f32(Tensor(shape: [0, 2])))], to: input)
            arguments = ["route", "--input", input, "--num-experts", "8", "--devices", "2", "--output", output]
        }
        let result = try MoEProcess.run(arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let file = try SafetensorsFile(path: output)
        if command == "forward" {
            #expect(file.entries["hidden_states"]?.shape == [0, 32])
            #expect(file.entries["topk_ids"]?.shape == [0, 2])
        } else {
            #expect(file.entries["mapping"]?.shape == [0, 8])
            #expect(file.entries["routed_tokens"]?.shape == [2, 4, 0])
        }
    }
}

/// Every word of every closed set is read: each command line below gets past argument-parser, and is refused,
/// if at all, only by a later check that needed the value.
@Suite("moe flag values", .timeLimit(.minutes(1)))
struct CLIFlagValueTests {
    static let suites = ["quick", "full", "realsize", "stress", "smoke"]

    @Test("every --kernel runs moe forward", arguments: KernelVariant.allCases)
    func kernel(_ kernel: KernelVariant) throws {
        let scratch = try ScratchDirectory()
        let result = try MoEProcess.run(["forward", "--checkpoint", BadFlag.olmoe, "--layer", "0", "--input", fixturesDirectory + "/olmoe/layer0.safetensors",
                                         "--output", scratch.path + "/out.safetensors", "--kernel", kernel.rawValue, "--threads", "2"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(try SafetensorsFile(path: scratch.path + "/out.safetensors").contains("hidden_states"))
    }

    /// `--devices 3` splits no suite's experts (nor runs realsize), so the suite is read and its cases checked.
    @Test("every --suite is read", arguments: suites)
    func suite(_ suite: String) throws {
        let result = try MoEProcess.run(["bench", "--suite", suite, "--devices", "3"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("--devices 3") && !result.stderr.contains("'--suite"), "stderr: \(result.stderr)")
    }

    /// No preset has 1024 experts or a multiple, so `--devices 1024` is refused once the preset's config is read.
    @Test("every --preset of moe run is read", arguments: ModelConfig.presetNames)
    func runPreset(_ name: String) throws {
        let experts = try ModelConfig.preset(named: name).moe.expertCount
        let result = try MoEProcess.run(["run", "--preset", name, "--devices", "1024"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("--devices 1024 does not split the \(experts) experts"), "stderr: \(result.stderr)")
    }

    @Test("--mesh is read in either case")
    func meshCase() throws {
        let result = try MoEProcess.run(["run", "--preset", "mixtral", "--mesh", "3X1"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("--mesh 3x1 does not split the 8 experts"), "stderr: \(result.stderr)")
    }

    @Test("every --ffn-scaling derives an MoE", arguments: FFNScaling.allCases)
    func ffnScaling(_ mode: FFNScaling) throws {
        let scratch = try ScratchDirectory()
        let config = scratch.path + "/dense.json"
        try #"{"n_embd": 64, "n_layer": 2, "d_ff": 256, "vocab_size": 100}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try MoEProcess.run(["estimate", "--config", config, "--ffn-scaling", mode.rawValue, "--experts", "4", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["ffn_scaling"] as? String == mode.rawValue)
    }

    /// `bfloat16`: the `torch_dtype` spellings are read too, as before the flags were typed.
    @Test("every --preset, --dtype and --compute of moe estimate", arguments: BlockShape.presetNames, ["f32", "bf16", "bfloat16"])
    func estimatePreset(_ preset: String, _ dtype: String) throws {
        let result = try MoEProcess.run(["estimate", "--preset", preset, "--dtype", dtype, "--compute", dtype, "--tokens", "1", "--json"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let cases = try #require(json["cases"] as? [[String: Any]])
        #expect(cases.map { $0["name"] as? String } == ["\(preset) \(dtype == "f32" ? "f32" : "bf16 bf16-compute") T=1"])
    }

    @Test("--help lists every word of each closed set", arguments: [
        ("forward", ["--kernel <kernel>", "reference", "fast", "--mesh <EPxTP>"]),
        ("bench", ["--suite <suite>"] + suites),
        ("estimate", ["(values: mixtral, qwen3, deepseek)", "(values: f32, bf16)"] + FFNScaling.allCases.map(\.rawValue)),
        ("run", ["(values: " + ModelConfig.presetNames.joined(separator: ", ")]),
    ])
    func helpListsValues(_ command: String, _ words: [String]) throws {
        let result = try MoEProcess.run([command, "--help"])
        #expect(result.status == 0)
        // argument-parser wraps at 80 columns: compare with the line breaks and indents as spaces.
        let help = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for word in words { #expect(help.contains(word), "\(word) is not in: \(result.stdout)") }
    }
}
