import MoEKit

/// Tensors re-stored in other ggml types: random weights encoded as F32, F16, BF16 or a block type, so a test
/// file holds the formats a real GGUF model does.
extension GGUFTestWriter {
    /// `values` stored as `type`: F32, F16, BF16 (truncated) or a ggml block type (MoEKit's quantizer).
    package static func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
        switch type {
        case .f32: return values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
        case .f16: return values.flatMap { v in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian, Array.init) }
        case .bf16: return values.flatMap { v in withUnsafeBytes(of: UInt16(v.bitPattern >> 16).littleEndian, Array.init) }
        default:
            let blocks = GGMLBlockType(ggmlTypeID: type.rawValue)!
            var out = [UInt8](repeating: 0, count: values.count / blocks.blockSize * blocks.bytesPerBlock)
            values.withUnsafeBufferPointer { x in
                out.withUnsafeMutableBytes { y in
                    for b in 0..<(values.count / blocks.blockSize) {
                        GGMLQuantizer.quantize(blocks, x.baseAddress! + b * blocks.blockSize, into: y.baseAddress! + b * blocks.bytesPerBlock)
                    }
                }
            }
            return out
        }
    }

    /// Re-stores tensor `name` as `type`, with random values (std 0.5); nothing when there is no such tensor.
    package mutating func store(_ name: String, as type: GGMLType, seed: UInt64) {
        guard let i = tensors.firstIndex(where: { $0.name == name }) else { return }
        var rng = SeededGenerator(seed: seed)
        let count = tensors[i].dims.reduce(1) { $0 * Int($1) }
        tensors[i].type = type.rawValue
        tensors[i].data = Self.encode(randomTensor([count], std: 0.5, generator: &rng).storage, as: type)
    }

    /// Every weight matrix of the feed-forward part (routed, shared, dense) re-stored: gate and up (and the dense
    /// and shared MLPs' gate and up) as `gateUp`, down as `down`.
    package mutating func storeMatrices(gateUp: GGMLType, down: GGMLType) {
        for (i, t) in tensors.enumerated() {
            let parts = t.name.split(separator: ".")
            guard parts.count == 4, parts[3] == "weight" else { continue }
            let role = parts[2]
            if ["ffn_gate_exps", "ffn_up_exps", "ffn_gate_shexp", "ffn_up_shexp", "ffn_gate", "ffn_up"].contains(role) {
                store(t.name, as: gateUp, seed: UInt64(100 + i))
            } else if ["ffn_down_exps", "ffn_down_shexp", "ffn_down"].contains(role) {
                store(t.name, as: down, seed: UInt64(100 + i))
            }
        }
    }
}
