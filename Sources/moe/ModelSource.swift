import MoEKit

/// What `--checkpoint` names: a safetensors checkpoint folder (`config.json` + weights), or a GGUF file
/// (a path ending in `.gguf`: one file, or any of the `-0000i-of-0000N.gguf` shards).
enum ModelSource {
    case safetensors(Checkpoint)
    case gguf(GGUFModel)

    /// Opens `path`: a GGUF file when it ends in `.gguf`, else a checkpoint folder.
    /// - Throws: ``GGUFError``, or the errors of ``Checkpoint/init(directory:)``.
    init(path: String) throws {
        if Self.isGGUF(path) {
            self = .gguf(try GGUFModel(path: path))
        } else {
            self = .safetensors(try Checkpoint(directory: path))
        }
    }

    static func isGGUF(_ path: String) -> Bool { path.lowercased().hasSuffix(".gguf") }

    var config: ModelConfig {
        switch self {
        case .safetensors(let c): c.config
        case .gguf(let g): g.config
        }
    }

    /// Refuses a `--layer` the model does not have, before anything of the layer is read.
    /// - Throws: ``CLIError/invalidOption(_:)`` naming the flag, the value and the model's layers (a GGUF
    ///   file's blocks, `blk.N`).
    func checkLayer(_ layer: Int) throws(CLIError) {
        let count = config.layerCount
        guard layer < 0 || layer >= count else { return }
        let unit = switch self {
        case .safetensors: "layers"
        case .gguf: "blocks"
        }
        throw .invalidOption("--layer \(layer) is out of range: the model has \(count) \(unit) (0...\(count - 1))")
    }

    /// The feed-forward block of decoder layer (GGUF: block) `layer`, its weights packed or read in place;
    /// `compute` ``ComputeMode/int8`` reaches GGUF block weights only (a safetensors checkpoint holds none).
    func feedForward(layer: Int, threads: Int = Parallel.defaultThreadCount, residency: WeightResidency = .packed,
                     compute: ComputeMode = .f32, progress: ((LoadProgress) -> Void)? = nil) throws -> FeedForward {
        switch self {
        case .safetensors(let c): try c.feedForward(layer: layer, threads: threads, residency: residency, progress: progress)
        case .gguf(let g): try g.feedForward(layer: layer, threads: threads, residency: residency, compute: compute, progress: progress)
        }
    }
}
