/// What the bytes of a weight matrix are: the format a checkpoint stores, kept as stored in memory.
/// The only enum a new weight format extends; the internal `TileKernel` maps (format × instruction set) to a kernel.
public enum WeightFormat: Hashable, Sendable, CustomStringConvertible {
    /// IEEE single precision.
    case f32
    /// bfloat16 (the upper half of an F32).
    case bf16
    /// IEEE half precision.
    case f16
    /// FP8 E4M3 ("e4m3fn": bias 7, no infinities, `S.1111.111` is NaN) with one scale per
    /// `blockRows × blockColumns` block of the `[out, in]` matrix (DeepSeek-V3, Qwen FP8:
    /// `weight_scale_inv`, 128 × 128); element (r, c) = e4m3 · scale[r / blockRows][c / blockColumns].
    case fp8E4M3(blockRows: Int, blockColumns: Int)
    /// OCP MXFP4: E2M1 codes, two a byte (low nibble first), one E8M0 scale per 32 consecutive inputs
    /// (GPT-OSS): element = e2m1 · 2^(e − 127).
    case mxfp4
    /// A ggml block format (GGUF files), held as stored: each row a run of blocks of
    /// ``GGMLBlockType/blockSize`` inputs, decoded exactly as ggml's `dequantize_row_*` (``GGMLBlocks``).
    case ggml(GGMLBlockType)

    /// Inputs per MXFP4 scale.
    public static let mxfp4Group = 32

    /// Storage bits per weight, scales included (at the 128 × 128 FP8 block: 8.002; MXFP4: 4.25).
    public var bitsPerWeight: Double {
        switch self {
        case .f32: 32
        case .bf16, .f16: 16
        case .fp8E4M3(let r, let c): 8 + 32 / Double(r * c)
        case .mxfp4: 4.25
        case .ggml(let type): type.bitsPerWeight
        }
    }

    /// The name `moe inspect` and `moe bench` print.
    public var description: String {
        switch self {
        case .f32: "f32"
        case .bf16: "bf16"
        case .f16: "f16"
        case .fp8E4M3(let r, let c): r == 128 && c == 128 ? "fp8-e4m3" : "fp8-e4m3 (\(r)x\(c) blocks)"
        case .mxfp4: "mxfp4"
        case .ggml(.mxfp4): "ggml-mxfp4"  // not GPT-OSS's safetensors MXFP4: another nibble order and scale bytes
        case .ggml(let type): type.description
        }
    }

    /// Whether the format carries scales beside its values.
    public var isQuantized: Bool {
        switch self {
        case .f32, .bf16, .f16: false
        case .fp8E4M3, .mxfp4, .ggml: true
        }
    }
}

/// How the fast kernels round activations (independent of how the weights are stored).
public enum ComputeMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// F32 activations, weights widened or dequantized exactly in registers, F32 accumulation.
    case f32
    /// PyTorch's BF16 path: activations rounded to bfloat16 before each projection, BF16 weights,
    /// F32 accumulation (`vdpbf16ps` where the CPU has it). BF16 weights only. About 2⁻⁸ relative per
    /// rounding: never used by `moe forward`.
    case bf16
    /// llama.cpp's fast mode, for ggml block weights (GGUF files): activations quantized per block to 8 bits
    /// as ggml quantizes them (``GGMLBlockType`` pairs with Q8_0, the K-quants with Q8_K), exact integer dot
    /// products (`vpdpbusd` on AVX-512 VNNI CPUs), the scaled block sums accumulated in F32. The error against
    /// the exact `f32` mode is that of the 8-bit activations (docs/PERFORMANCE.md measures it per format,
    /// about 1e-2 relative, as llama.cpp's own). Weights without int8 kernels (F32, BF16, F16, FP8, GPT-OSS's
    /// MXFP4) are computed as in `f32`; every ggml block type has them.
    case int8

    /// `f32`, `bf16` or `int8`.
    public var description: String { rawValue }
}

/// The scalar decoders: the specification every packed layout and kernel is tested against.
public enum WeightDecoding {
    /// IEEE half bits → Float (exact).
    @inline(__always) public static func f16(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }

    /// bfloat16 bits → Float (exact).
    @inline(__always) public static func bf16(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// FP8 E4M3 (e4m3fn) code → Float (exact); `S.1111.111` is NaN.
    @inline(__always) public static func e4m3(_ code: UInt8) -> Float {
        let sign: Float = code & 0x80 != 0 ? -1 : 1
        let exponent = Int((code >> 3) & 0xF), mantissa = Int(code & 0x7)
        if exponent == 0xF && mantissa == 0x7 { return .nan }
        if exponent == 0 { return sign * Float(mantissa) * 0x1p-9 }  // subnormal: m/8 · 2^-6
        return sign * Float(8 + mantissa) * Float(sign: .plus, exponent: exponent - 10, significand: 1)
    }

    /// Whether an E4M3 code is NaN.
    @inline(__always) public static func isNaN(e4m3 code: UInt8) -> Bool { code & 0x7F == 0x7F }

    /// The 16 E2M1 values (bit 3 the sign).
    public static let e2m1Table: [Float] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]

    /// E2M1 code (low 4 bits) → Float (exact).
    @inline(__always) public static func e2m1(_ code: UInt8) -> Float { e2m1Table[Int(code & 0xF)] }

    /// E8M0 scale byte → 2^(e − 127) (exact; 0xFF is NaN).
    @inline(__always) public static func e8m0(_ e: UInt8) -> Float {
        if e == 0xFF { return .nan }
        if e == 0 { return 0x1p-127 }
        return Float(bitPattern: UInt32(e) << 23)
    }

    /// One MXFP4 element: e2m1 · 2^(e − 127), exact (ldexp: subnormal results included).
    @inline(__always) public static func mxfp4(code: UInt8, scale e: UInt8) -> Float {
        e2m1(code) * e8m0(e)
    }
}
