import ArgumentParser
import MoEKit

/// The benchmark suites, `moe bench --suite`: argument-parser refuses any other word as it reads the command
/// line, and `--help` lists each suite with what it runs.
enum BenchSuite: String, CaseIterable, ExpressibleByArgument {
    /// The bench presets at T = 1, 16, 128, 512 in F32, BF16 and BF16 compute, and the quantized shapes.
    case quick
    /// ``quick``'s shapes and two wider ones at T = 1 ... 2048.
    case full
    /// Real models' layers (``RealSizeCase``), run by ``RealSizeBench``: no cases of this list.
    case realsize
    /// Bounded stress (issue 13): T = 65,536 on the mixtral preset balanced and with every token on the same two
    /// experts (the other six empty), and DeepSeek-V3's routing (E = 256, K = 8, 8 groups keep 4) balanced and hot.
    case stress
    /// Tiny shapes that run the whole path in a second (tests).
    case smoke
    /// llama.cpp's block formats (issue 12): the quick shapes with Q4_K, Q6_K, Q8_0 and ggml MXFP4 experts (random blocks made
    /// as stored) at T = 1, 128, 512, exact (F32 activations) and int8 compute.
    case gguf

    /// What `--help` says of each suite (the command's discussion has the details).
    static var allValueDescriptions: [String: String] {
        [BenchSuite.quick.rawValue: "mixtral, qwen3, deepseek at T = 1 to 512; F32, BF16, BF16 compute, MXFP4, FP8.",
         BenchSuite.full.rawValue: "quick's shapes and two wider ones at T = 1 to 2048.",
         BenchSuite.realsize.rawValue: "Real models' layer sizes, one layer at a time (one device).",
         BenchSuite.stress.rawValue: "T = 65,536, balanced and hot.",
         BenchSuite.smoke.rawValue: "Tiny shapes, for tests.",
         BenchSuite.gguf.rawValue: "quick's shapes in Q4_K, Q6_K, Q8_0, ggml MXFP4 at T = 1, 128, 512: exact and int8 compute."]
    }

    var cases: [BenchCase] {
        let tokens: [Int]
        switch self {
        case .quick: tokens = [1, 16, 128, 512]
        case .full: tokens = [1, 4, 16, 64, 128, 512, 2048]
        case .smoke: tokens = [1, 8]
        case .realsize: return []
        case .stress: return BenchCase.stressCases
        case .gguf: return BenchCase.ggufCases
        }
        var presets = self == .smoke ? BenchCase.smokePresets : BenchCase.quickPresets
        if self == .full { presets += BenchCase.fullPresets }
        let dense = presets.flatMap { preset in
            BenchCase.Precision.dense.flatMap { precision in
                tokens.map { BenchCase(preset: preset.name, config: preset.config, tokens: $0, precision: precision) }
            }
        }
        // The formats the Hub ships quantized, beside the same shapes in BF16.
        let quantized = (self == .smoke ? BenchCase.smokeQuantizedPresets : BenchCase.quantizedPresets).flatMap { preset in
            [BenchCase.Precision(format: preset.format, compute: .f32), .init(format: .bf16, compute: .f32)].flatMap { precision in
                tokens.filter { $0 == 1 || $0 >= 128 }.map { BenchCase(preset: preset.name, config: preset.config, tokens: $0, precision: precision) }
            }
        }
        return dense + quantized
    }
}
