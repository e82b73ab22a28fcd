/// The MoE model a GGUF file (or a set of split files) holds: its ``ModelConfig`` from the
/// metadata, and for every block the feed-forward tensors where they lie, each shape checked
/// against that config on open.
///
/// ```swift
/// let model = try GGUFModel(path: "Qwen3-30B-A3B-Q4_K_M.gguf")
/// guard case .moe(let block) = try model.layer(0).feedForward else { return }
/// print(block.gate.type, block.gate.shape, block.gate.rowStride)   // Q4_K [128, 768, 2048] 1152
/// ```
public final class GGUFModel: Sendable {
    /// The file, or the split files, the model lies in.
    public let shards: GGUFShards
    /// llama.cpp's architecture (`general.architecture`).
    public let architecture: GGUFArchitecture
    /// The feed-forward configuration the metadata maps to (`docs/GGUF.md` has the tables).
    public let config: ModelConfig
    /// Every block's feed-forward tensors, `blk.0` first.
    public let layers: [GGUFLayerTensors]

    /// Opens `path` (a `.gguf` file, or any shard of `-0000i-of-0000N.gguf` files) and checks the
    /// metadata and every block's feed-forward tensors.
    /// - Throws: ``GGUFError`` naming the file and the key or tensor at fault.
    public convenience init(path: String) throws(GGUFError) {
        try self.init(shards: try GGUFShards(path: path))
    }

    /// Reads the model of already opened `shards` and checks every block's feed-forward tensors.
    /// - Throws: ``GGUFError`` naming the file and the key or tensor at fault.
    public init(shards: GGUFShards) throws(GGUFError) {
        let sizes = try GGUFHyperparameters(metadata: shards.metadata)
        let reader = GGUFLayerReader(shards: shards, sizes: sizes)
        var layers: [GGUFLayerTensors] = []
        layers.reserveCapacity(sizes.layerCount)
        for n in 0..<sizes.layerCount { layers.append(try reader.layer(n)) }
        var config = sizes.config
        for layer in layers {
            if case .moe(let block) = layer.feedForward {
                config.declaredDType = block.gate.type.description
                break
            }
        }
        self.shards = shards
        self.architecture = sizes.arch
        self.config = config
        self.layers = layers
    }

    /// The first shard's path.
    public var path: String { shards.path }

    /// The feed-forward tensors of block `n` (`blk.n`).
    /// - Throws: ``GGUFError/layerOutOfRange(path:layer:layerCount:)``.
    public func layer(_ n: Int) throws(GGUFError) -> GGUFLayerTensors {
        guard n >= 0, n < layers.count else { throw .layerOutOfRange(path: path, layer: n, layerCount: layers.count) }
        return layers[n]
    }
}
