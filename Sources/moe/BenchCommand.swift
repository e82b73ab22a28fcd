import ArgumentParser
import MoEKit

/// `moe bench`: the machine's roofs, then each MoE case, as fractions of those roofs.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the GEMM peak and memory bandwidth, then the MoE layer on the benchmark presets.",
        discussion: """
            Quick suite: mixtral (1024/3584, 8 experts, top-2), qwen3 (2048/768, 128 experts, top-8) and deepseek
            (1024/512, 64 experts, top-6, 8 groups keep 4, 1 shared) at T = 1, 16, 128, 512, with F32 weights, BF16
            weights (F32 compute: exact for BF16 checkpoints) and BF16 compute (activations rounded to BF16 too,
            F32 accumulation with vdpbf16ps where the CPU has AVX-512 BF16, as PyTorch's BF16 path); then the formats
            the Hub ships quantized, read directly by their kernels: gpt-oss (2880/2880, 8 experts, top-4) in MXFP4 and
            deepseek in FP8 (128x128 block scales), each beside the same shape in BF16, at T = 1, 128, 512.
            GGUF suite: the quick shapes with experts in llama.cpp's Q4_K, Q6_K, Q8_0 and MXFP4 blocks (random blocks), at T = 1,
            128, 512, in the exact mode (F32 activations, the default of moe forward) and in int8 compute (activations
            quantized per block to 8 bits, integer dot products: llama.cpp's arithmetic; moe forward --compute int8).
            MOEKIT_ISA=avx512|avx2|swift forces a lower instruction set (machine.isa names the one that ran; machine.amx
            says why AMX did not run, null when it did).
            Realsize suite: one layer of mixtral-8x7b (4096/14336, 8 experts, BF16), qwen3-30b-a3b (2048/768, 128 experts,
            BF16), deepseek-v3 (7168/2048, 256 experts, top-8, 1 shared, FP8 128x128) and gpt-oss-120b (2880/2880, 128
            experts, top-4, MXFP4), random weights made in the stored format, one layer at a time (a layer that does not
            fit in the memory available is skipped): load time, resident bytes (process RSS before and after) against
            moe estimate's prediction, and forward time at T = 1 and 512 (1 warm-up, --repeats default 2; no reference).
            Stress suite: T = 65,536 with BF16 weights on the mixtral shape and with DeepSeek-V3's routing (E = 256, K = 8,
            8 groups keep 4), each balanced (random tokens) and hot (one token repeated: every token on the same K experts,
            the others empty); --repeats default 1.
            Examples:
              moe bench
              moe bench --suite full --threads 2 --json bench.json
              moe bench --filter 'gpt-oss mxfp4'
              moe bench --suite realsize --json realsize.json
              moe bench --suite realsize --filter deepseek
              moe bench --suite stress
              moe bench --suite gguf --filter 'q4_K int8-compute'
            """)

    @Option(help: "The cases to run.") var suite: BenchSuite = .quick
    @OptionGroup var threading: ThreadOptions
    @Option(parsing: .unconditional, help: Flags.benchRepeats.help("Timed repeats per case (median reported), each on different tokens (default 5; realsize 2)."),
            transform: Flags.benchRepeats.parse) var repeats: Int?
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(help: "Only cases matching every word: a word is part of the preset's name or one of the case name's words (e.g. 'mixtral bf16-compute T=512').") var filter: String?
    @Option(parsing: .unconditional, help: Flags.devices.help("Run every case expert-parallel over D in-process devices and report the all-to-all bytes.", default: 1),
            transform: Flags.devices.parse) var devices = 1

    /// The checks between flags, before the machine's roofs are measured; each flag's own range is checked as
    /// it is parsed (``Flags``).
    func validate() throws {
        if suite == .realsize, devices != 1 { throw CLIError.invalidOption("--suite realsize runs on one device (got --devices \(devices))") }
        for c in suite.cases where c.matches(filter) {
            try checkExpertSplit(c.config.expertCount, over: devices, flag: "--devices \(devices)",
                                 experts: "the \(c.config.expertCount) experts of \(c.name)")
        }
    }

    func run() throws {
        try reportingErrors {
            let repeats = self.repeats ?? (suite == .realsize ? 2 : suite == .stress ? 1 : 5)
            let threadCount = threading.threadCount
            // The smoke suite measures small roofs too: it checks the path, not the machine.
            let (gemmSize, readBytes) = suite == .smoke ? (256, 1 << 24) : (2048, 1 << 30)
            progress("measuring the F32 GEMM peak (\(gemmSize)³, MoEKit's and OpenBLAS's if installed) and memory read bandwidth (\(readBytes >> 20) MiB) on \(threadCount) threads…")
            // OpenBLAS last: its threads may spin on after its GEMM and would slow the other probes.
            let moekitGEMM = try MachineRoofs.gemmGFLOPS(size: gemmSize, threads: threadCount)
            let memory = MachineRoofs.readBandwidth(bytes: readBytes, threads: threadCount)
            let region = MachineRoofs.parallelRegionMicroseconds(threads: threadCount)
            let machine = BenchReport.Machine(moekitGEMMGFLOPS: moekitGEMM,
                                              openBLASGEMMGFLOPS: OpenBLASPeak.gemmGFLOPS(size: gemmSize, threads: threadCount),
                                              memoryGBs: memory, isa: ExpertWeights.kernelISA, amx: ExpertWeights.kernelAMXFallback, threads: threadCount,
                                              regionMicroseconds: region)
            var report = BenchReport(machine: machine, cases: [])
            if suite == .realsize {
                let realsize = RealSizeBench(machine: machine, threads: threadCount, repeats: repeats) { progress($0) }
                (report.cases, report.realsize) = try realsize.run(filter: filter)
                report.printTable()
                print("")
                RealSizeBench.printTable(report.realsize ?? [])
                if let json { try report.write(to: json) }
                return
            }
            let selected = suite.cases.filter { $0.matches(filter) }
            for group in BenchCase.grouped(selected) {
                report.cases += try runGroup(group, machine: machine, threads: threadCount, repeats: repeats)
            }
            report.printTable()
            if let json { try report.write(to: json) }
        }
    }

    /// Runs the cases of one (preset, precision): one block, several token counts.
    private func runGroup(_ group: [BenchCase], machine: BenchReport.Machine, threads: Int, repeats: Int) throws -> [BenchReport.Case] {
        guard let first = group.first else { return [] }
        progress("\(first.preset) \(first.dtype) \(first.precision.compute) compute: building random weights…")
        let (format, compute) = (first.precision.format, first.precision.compute)
        // ggml blocks are made as stored (no F32 stack of the whole layer first).
        let block = if case .ggml = format {
            try MoEBlock.randomStored(config: first.config, seed: 1, format: format, compute: compute, threads: threads)
        } else {
            try MoEBlock.random(config: first.config, seed: 1, format: format, compute: compute)
        }
        let parallel = devices > 1 ? try ExpertParallelMoE(block: block, deviceCount: devices) : nil
        let referenceSecondsPerToken = try referenceTime(block, threads: threads)
        var results: [BenchReport.Case] = []
        for c in group {
            progress("\(c.name)…")
            var rng = SplitMix64(seed: UInt64(c.tokens))
            // Different tokens for every repeat, so routing (and the weights a decode step touches) changes; a hot
            // case repeats one token T times, so every token picks the same K experts and the others stay empty.
            let inputs = try (0..<(repeats + 1)).map { _ in
                guard c.hot else { return rng.tensor([c.tokens, c.config.hiddenSize], std: 1) }
                let token = rng.tensor([1, c.config.hiddenSize], std: 1).storage
                return try Tensor(shape: [c.tokens, c.config.hiddenSize], storage: Array(repeatElement(token, count: c.tokens).joined()))
            }
            var times: [Double] = []
            var rows = 0, touched = 0.0, moved = 0, expertsUsed = 0
            for (i, x) in inputs.enumerated() {
                let start = ContinuousClock.now
                let out: MoEBlockOutput
                if let parallel {
                    let result = try parallel.forward(x, variant: .fast, threads: threads)
                    out = result.output
                    if i > 0 { moved += result.traffic.dispatchBytes + result.traffic.combineBytes }
                } else {
                    out = try block.forward(x, variant: .fast, threads: threads)
                }
                let t = MachineRoofs.seconds(ContinuousClock.now - start)
                if i > 0 {
                    times.append(t)
                    rows += out.plan.rowCount
                    touched += c.weightBytesTouched(out.plan)
                    expertsUsed += out.plan.tokensPerExpert.filter { $0 > 0 }.count
                }
            }
            let median = times.sorted()[times.count / 2]
            let flops = c.config.forwardFLOPs(tokenCount: c.tokens, routedRows: rows / times.count)
            let gflops = flops / median / 1e9
            let weightGBs = touched / Double(times.count) / median / 1e9
            results.append(BenchReport.Case(
                name: c.name, preset: c.preset, tokens: c.tokens, dtype: c.dtype, compute: c.compute, hidden: c.config.hiddenSize,
                intermediate: c.config.expertIntermediateSize, experts: c.config.expertCount, topK: c.config.expertsPerToken,
                sharedIntermediate: c.config.sharedExpert?.intermediateSize ?? 0, ms: median * 1e3, gflops: gflops,
                pctGEMMPeak: 100 * gflops / machine.gemmGFLOPS, weightGBs: weightGBs, pctMemoryBandwidth: 100 * weightGBs / machine.memoryGBs,
                speedupVsReference: referenceSecondsPerToken * Double(c.tokens) / median,
                devices: devices, allToAllBytes: parallel == nil ? nil : moved / times.count,
                expertsTouched: Double(expertsUsed) / Double(times.count)))
        }
        return results
    }

    /// Seconds per token of the reference kernels, timed on 16 tokens (the reference is linear in tokens).
    private func referenceTime(_ block: MoEBlock, threads: Int) throws -> Double {
        var rng = SplitMix64(seed: 5)
        let x = rng.tensor([16, block.config.hiddenSize], std: 1)
        let start = ContinuousClock.now
        _ = try block.forward(x, variant: .reference, threads: threads)
        return MachineRoofs.seconds(ContinuousClock.now - start) / 16
    }

    private func progress(_ line: String) { printError("bench: \(line)") }
}

/// One benchmark case: a preset shape, a token count, a weight format and a compute mode.
struct BenchCase {
    /// How the weights are stored and what the projections compute in.
    struct Precision: Equatable {
        var format: WeightFormat
        var compute: ComputeMode

        /// F32 weights, BF16 weights (F32 compute), BF16 compute.
        static let dense = [Precision(format: .f32, compute: .f32), .init(format: .bf16, compute: .f32), .init(format: .bf16, compute: .bf16)]
    }

    var preset: String
    var config: MoEConfig
    var tokens: Int
    var precision: Precision
    /// Every token the same (so routed to the same K experts), instead of random tokens.
    var hot = false

    /// The weights' dtype: `f32`, `bf16`, `f16`, `fp8` or `mxfp4`.
    var dtype: String {
        switch precision.format {
        case .f32: "f32"
        case .bf16: "bf16"
        case .f16: "f16"
        case .fp8E4M3: "fp8"
        case .mxfp4: "mxfp4"
        case .ggml(let type): "\(WeightFormat.ggml(type))"
        }
    }
    /// What the projections compute in: `f32`, or `bf16` (activations rounded too, as PyTorch's BF16 path).
    var compute: String { precision.compute.rawValue }
    var name: String {
        let compute = switch precision.compute {
        case .f32: ""
        case .bf16: " bf16-compute"
        case .int8: " int8-compute"
        }
        return "\(preset) \(dtype)\(compute) T=\(tokens)\(hot ? " hot" : "")"
    }

    /// ``BenchSuite/gguf``: the quick shapes in llama.cpp's block formats, exact then int8, at T = 1, 128, 512.
    static let ggufCases: [BenchCase] = quickPresets.flatMap { preset in
        [GGMLBlockType.q4_K, .q6_K, .q8_0, .mxfp4].flatMap { type in
            [ComputeMode.f32, .int8].flatMap { compute in
                [1, 128, 512].map { BenchCase(preset: preset.name, config: preset.config, tokens: $0, precision: .init(format: .ggml(type), compute: compute)) }
            }
        }
    }

    /// ``BenchSuite/stress``: BF16 weights, one token count, each shape balanced then hot.
    static let stressCases: [BenchCase] = {
        let deepseekRouting = MoEConfig(hiddenSize: 1024, expertCount: 256, expertsPerToken: 8, expertIntermediateSize: 256,
                                        router: .sigmoidGroupedTopK(groupCount: 8, keptGroupCount: 4, normalizesTopKWeights: true, scalingFactor: 2.5))
        let shapes = [("mixtral", quickPresets[0].config), ("deepseek-v3-routing", deepseekRouting)]
        return shapes.flatMap { name, config in
            [false, true].map { hot in
                BenchCase(preset: name, config: config, tokens: 65_536, precision: .init(format: .bf16, compute: .f32), hot: hot)
            }
        }
    }()

    /// Shapes whose official checkpoints are quantized: gpt-oss (MXFP4 experts; gpt-oss-20b's widths with 8 of its
    /// 32 experts) and deepseek (FP8 128 × 128 blocks; the quick deepseek shape).
    static let quantizedPresets: [(name: String, config: MoEConfig, format: WeightFormat)] = [
        ("gpt-oss", MoEConfig(hiddenSize: 2880, expertCount: 8, expertsPerToken: 4, expertIntermediateSize: 2880,
                              router: .topKThenSoftmax, routerHasBias: true, expert: .clampedGated(alpha: 1.702, limit: 7)), .mxfp4),
        ("deepseek", quickPresets[2].config, .fp8E4M3(blockRows: 128, blockColumns: 128)),
    ]

    /// The quantized path on tiny shapes (tests).
    static let smokeQuantizedPresets: [(name: String, config: MoEConfig, format: WeightFormat)] = [
        ("smoke-q", MoEConfig(hiddenSize: 64, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 96,
                              router: .softmaxTopK(normalizesTopKWeights: true)), .mxfp4),
    ]

    static let quickPresets: [(name: String, config: MoEConfig)] = [
        ("mixtral", MoEConfig(hiddenSize: 1024, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 3584,
                              router: .softmaxTopK(normalizesTopKWeights: true))),
        ("qwen3", MoEConfig(hiddenSize: 2048, expertCount: 128, expertsPerToken: 8, expertIntermediateSize: 768,
                            router: .softmaxTopK(normalizesTopKWeights: true))),
        ("deepseek", MoEConfig(hiddenSize: 1024, expertCount: 64, expertsPerToken: 6, expertIntermediateSize: 512,
                               router: .sigmoidGroupedTopK(groupCount: 8, keptGroupCount: 4, normalizesTopKWeights: true, scalingFactor: 2.5),
                               sharedExpert: SharedExpertConfig(intermediateSize: 512, gate: .none))),
    ]

    /// Tiny shapes that exercise the whole benchmark path in a second (tests).
    static let smokePresets: [(name: String, config: MoEConfig)] = [
        ("smoke", MoEConfig(hiddenSize: 64, expertCount: 4, expertsPerToken: 2, expertIntermediateSize: 96,
                            router: .softmaxTopK(normalizesTopKWeights: true),
                            sharedExpert: SharedExpertConfig(intermediateSize: 32, gate: .sigmoid))),
    ]

    /// Larger shapes: a real Mixtral-8x7B expert width and a DeepSeek-like wide hidden size.
    static let fullPresets: [(name: String, config: MoEConfig)] = [
        ("mixtral-wide", MoEConfig(hiddenSize: 4096, expertCount: 8, expertsPerToken: 2, expertIntermediateSize: 3584,
                                   router: .softmaxTopK(normalizesTopKWeights: true))),
        ("deepseek-wide", MoEConfig(hiddenSize: 2048, expertCount: 64, expertsPerToken: 6, expertIntermediateSize: 1408,
                                    router: .sigmoidGroupedTopK(groupCount: 8, keptGroupCount: 4, normalizesTopKWeights: true, scalingFactor: 2.5),
                                    sharedExpert: SharedExpertConfig(intermediateSize: 1408, gate: .none))),
    ]

    /// Whether every word of `filter` is part of the preset's name or one of this case's name words
    /// (`T=1` selects T = 1 only, not 128).
    func matches(_ filter: String?) -> Bool {
        guard let filter else { return true }
        let words = name.split(separator: " ")
        return filter.split(separator: " ").allSatisfy { word in preset.contains(word) || words.contains(word) }
    }

    /// Consecutive cases of the same preset and precision share one block.
    static func grouped(_ cases: [BenchCase]) -> [[BenchCase]] {
        var groups: [[BenchCase]] = []
        for c in cases {
            if let last = groups.last?.last, last.preset == c.preset, last.precision == c.precision {
                groups[groups.count - 1].append(c)
            } else {
                groups.append([c])
            }
        }
        return groups
    }

    /// Bytes of weights one forward reads: every expert with at least one row, the shared expert, the router.
    func weightBytesTouched(_ plan: RoutingPlan) -> Double {
        let bytes = precision.format.bitsPerWeight / 8
        let (h, f) = (Double(config.hiddenSize), Double(config.expertIntermediateSize))
        let used = Double(plan.tokensPerExpert.filter { $0 > 0 }.count)
        var total = used * 3 * h * f * bytes + Double(config.expertCount) * h * 4
        if let shared = config.sharedExpert { total += 3 * h * Double(shared.intermediateSize) * bytes }
        return total
    }
}
