/// One model's feed-forward layers: the MoE block shape, which decoder layers are sparse, and the
/// width of the dense MLP used by the others.
public struct ModelConfig: Sendable, Equatable {
    /// The model family, which also fixes its checkpoint tensor names.
    public var architecture: Architecture
    /// The MoE block of the sparse layers (every sparse layer has the same shape).
    public var moe: MoEConfig
    /// The number of decoder layers.
    public var layerCount: Int
    /// For each layer, whether it holds the MoE block (otherwise a dense SwiGLU MLP).
    public var sparseLayers: [Bool]
    /// Intermediate width of the dense MLP of non-MoE layers (`nil` when every layer is sparse).
    public var denseIntermediateSize: Int?
    /// The dtype the checkpoint declares (`torch_dtype` / `dtype`), for reports only.
    public var declaredDType: String?
    /// How the checkpoint quantizes its weights (`quantization_config`), `nil` when it does not.
    public var quantization: Quantization?

    /// A checkpoint's `quantization_config.quant_method`, with what the format needs.
    public enum Quantization: Sendable, Equatable, CustomStringConvertible {
        /// Every linear weight F8_E4M3 with a `weight_scale_inv` per `blockRows × blockColumns` block.
        case fp8(blockRows: Int, blockColumns: Int)
        /// The experts as MXFP4 `*_blocks` + `*_scales` (GPT-OSS).
        case mxfp4

        /// The method as `moe inspect` prints it: `fp8 (128x128 blocks)` or `mxfp4`.
        public var description: String {
            switch self {
            case .fp8(let r, let c): "fp8 (\(r)x\(c) blocks)"
            case .mxfp4: "mxfp4"
            }
        }
    }

    /// A model of `layerCount` layers; `sparseLayers` `nil` makes every layer sparse. Not validated: call
    /// ``validate()``.
    public init(architecture: Architecture, moe: MoEConfig, layerCount: Int, sparseLayers: [Bool]? = nil,
                denseIntermediateSize: Int? = nil, declaredDType: String? = nil) {
        self.architecture = architecture
        self.moe = moe
        self.layerCount = layerCount
        self.sparseLayers = sparseLayers ?? Array(repeating: true, count: layerCount)
        self.denseIntermediateSize = denseIntermediateSize
        self.declaredDType = declaredDType
    }

    /// Whether `layer` holds the MoE block.
    /// - Throws: ``ConfigError/layerOutOfRange(layer:layerCount:)``.
    public func isSparse(layer: Int) throws(ConfigError) -> Bool {
        guard layer >= 0, layer < layerCount else { throw .layerOutOfRange(layer: layer, layerCount: layerCount) }
        return sparseLayers[layer]
    }

    /// Validates the block and the layer layout.
    public func validate() throws(ConfigError) {
        try moe.validate()
        try ConfigError.require(layerCount > 0, field: "num_hidden_layers", value: layerCount, "must be positive")
        try ConfigError.require(sparseLayers.count == layerCount, field: "moe_layers", value: sparseLayers.count,
                                "must describe all \(layerCount) layers")
        if sparseLayers.contains(false) {
            try ConfigError.require((denseIntermediateSize ?? 0) > 0, field: "intermediate_size",
                                    value: denseIntermediateSize.map(String.init) ?? "missing",
                                    "must be positive: the model has dense layers")
        }
    }
}
