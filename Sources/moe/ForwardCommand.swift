import ArgumentParser
import MoEKit

/// `moe forward`: the feed-forward block of one decoder layer of a real checkpoint.
struct ForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Run only the feed-forward block (MoE or dense) of decoder layer N of a checkpoint.",
        discussion: """
            IN holds `hidden_states` [T, H] or [B, S, H] (F32, BF16 or F16). OUT gets `hidden_states` (F32, same \
            shape) and, for an MoE layer, `router_logits` [T, E], `topk_ids` [T, K] I32 and `topk_weights` [T, K].

            Weights are read as stored and never widened: F32, BF16, F16; FP8 E4M3 + weight_scale_inv (F32/BF16/F16, \
            one per 128x128 block; quantization_config.quant_method fp8: DeepSeek-V3, Qwen FP8); MXFP4 *_blocks + \
            *_scales (quant_method mxfp4: GPT-OSS). A GGUF file (--checkpoint model.gguf, or the first of \
            -0000i-of-0000N.gguf shards; layer N is blk.N) of llama.cpp's MoE architectures: F32, F16, BF16, Q8_0, \
            Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, MXFP4 tensors as stored (gate and up in one type, down may \
            differ). Computation is F32 on the exactly dequantized weights; --compute int8 runs the GGUF block types as \
            llama.cpp does (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, MXFP4 against Q8_0 activations; Q4_K, Q5_K, Q6_K against Q8_K): \
            activations quantized per block to 8 bits, integer dot products (AVX-512 VNNI, else AVX2), about 1e-2 \
            relative from exact.

            F32, BF16 and F16 weights are read in place from the mapped file (--weights mapped, the default: no \
            copy, resident at their stored size); --weights packed packs them once first (the same bits; faster per \
            forward, slower to start). A load longer than a second shows progress on a terminal; a layer that \
            cannot fit in the memory available is refused with both numbers. With --mpi, every process of the job \
            is one device; rank 0 reads IN and writes OUT.

            Examples:
              moe forward --checkpoint ./OLMoE --layer 0 --input x.safetensors --output y.safetensors
              moe forward --checkpoint Qwen3-30B-A3B-Q4_K_M.gguf --layer 3 --input x.safetensors --output y.safetensors
              moe forward --checkpoint Qwen3-30B-A3B-Q4_K_M.gguf --layer 3 --compute int8 --input x.safetensors --output y.safetensors
              moe forward … --devices 4        # expert parallel over 4 in-process devices
              moe forward … --mesh 2x2         # 2 expert groups × 2 tensor-parallel ranks
              mpirun -np 4 moe forward … --mpi # one rank per process (build with --traits MPI)
            """)

    @Option(help: "Checkpoint folder (config.json + model.safetensors or a sharded index), or a .gguf file (the first of split shards).")
    var checkpoint: String
    @Option(parsing: .unconditional, help: Flags.layer.help("Decoder layer index."), transform: Flags.layer.parse) var layer: Int
    @Option(help: "Input .safetensors with `hidden_states`.") var input: String
    @Option(help: "Output .safetensors to write.") var output: String
    @Option(help: "Kernels to run.") var kernel: KernelVariant = .fast
    @Option(help: "Where the kernels read the weights from (one forward: mapped, no copy).") var weights: WeightResidency = .mapped
    @Option(help: "Arithmetic of the GGUF block weights' projections.") var compute: ForwardCompute = .f32
    @OptionGroup var parallel: ParallelOptions
    @Option(help: .hidden) var simulateHungRank: Int?
    /// Prints the process's peak resident bytes (VmHWM) to stderr at the end (the resident-memory test).
    @Flag(help: .hidden) var printPeakMemory = false

    /// Reads IN, forwards it through the layer and writes OUT. Each flag's own range was checked as it was
    /// parsed (``Flags``) and the parallel flags together (``ParallelOptions/validate()``); `--layer` and
    /// `--devices` are checked against the model once its config is read.
    func run() throws {
        if parallel.mpi {
            try MPIForward.run(self)
            return
        }
        try reportingErrors {
            let (threads, devices, mesh) = (parallel.threadCount, parallel.devices, parallel.mesh)
            let start = ContinuousClock.now
            let model = try ModelSource(path: checkpoint)
            try model.checkLayer(layer)
            if model.config.sparseLayers[layer] { try model.config.moe.checkExpertParallel(devices: devices, mesh: mesh) }
            let block = try model.feedForward(layer: layer, threads: threads, residency: weights, compute: compute.mode,
                                              progress: LoadProgressLine.make())
            let loaded = ContinuousClock.now
            let file = try SafetensorsFile(path: input)
            let hidden = try file.floats("hidden_states")
            guard hidden.rank == 2 || hidden.rank == 3, hidden.shape.last == block.hiddenSize else {
                throw CLIError.inFile(input, "hidden_states has shape \(hidden.shape); expected [T, \(block.hiddenSize)] or [B, S, \(block.hiddenSize)]")
            }
            let tokens = hidden.count / block.hiddenSize
            let (out, moe): (Tensor<Float>, MoEBlockOutput?)
            do {
                let x = try hidden.reshaped([tokens, block.hiddenSize])
                if case .moe(let moeBlock) = block, devices != 1 || mesh != nil {
                    let expertParallel = try mesh.map { try ExpertParallelMoE(block: moeBlock, mesh: $0) }
                        ?? ExpertParallelMoE(block: moeBlock, deviceCount: devices)
                    let result = try expertParallel.forward(x, variant: kernel, threads: threads).output
                    (out, moe) = (result.hiddenStates, result)
                } else {
                    (out, moe) = try block.forward(x, variant: kernel, threads: threads)  // dense layers are replicated
                }
            } catch let error as RoutingError {
                throw CLIError.inFile(input, "\(error)")
            }
            let computed = ContinuousClock.now
            var tensors: [(name: String, tensor: AnyTensor)] = [("hidden_states", .f32(try out.reshaped(hidden.shape)))]
            if let moe {
                tensors += [("router_logits", .f32(moe.routing.logits)), ("topk_ids", .i32(moe.routing.expertIDs)),
                            ("topk_weights", .f32(moe.routing.weights))]
            }
            try SafetensorsWriter.write(tensors, metadata: ["format": "pt", "producer": "moekit"], to: output)
            if printPeakMemory {
                printError("peak resident bytes: \(ProcessMemory.peakResidentBytes().map(String.init) ?? "unknown")")
                let s = { (a: ContinuousClock.Instant, b: ContinuousClock.Instant) in format(MachineRoofs.seconds(b - a), 3) }
                printError("seconds: load \(s(start, loaded)), input and forward \(s(loaded, computed)), output \(s(computed, ContinuousClock.now))")
            }
        }
    }
}
