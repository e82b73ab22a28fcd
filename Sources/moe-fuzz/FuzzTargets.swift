// Fuzz targets for MoEKit's readers of untrusted input: libFuzzer entry points when built with
// `scripts/fuzz.sh` (`-sanitize=fuzzer,address -DFUZZING`), a replayer otherwise (`moe-fuzz TARGET FILE…` runs
// each file through the target, e.g. a crash libFuzzer found, or the seed corpus). Every input must end in a
// value or a thrown error; a trap, an overflow or a bad access is a finding.
import FoundationEssentials
import MoEKit

#if canImport(Glibc)
import Glibc
#endif

/// What the fuzzer feeds.
enum FuzzTarget: String, CaseIterable {
    /// A `.safetensors` file: header, then every tensor's data as its dtype (the input-tensor reader too).
    case safetensors
    /// A GGUF file: header, metadata, tensor table; then the model config and every block's tensors.
    case gguf
    /// A Hugging Face `config.json` → `ModelConfig`, for every architecture it names.
    case config
    /// Bytes as a routing table (`moe route`): expert ids and weights → `RouteAssignments` → the seed tables.
    case route

    /// Runs one input. Errors are expected answers; only a crash is a finding.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .safetensors:
            guard let path = Self.scratchFile(bytes, suffix: ".safetensors"), let file = try? SafetensorsFile(path: path) else { return }
            for name in file.tensorNames { _ = try? file.tensor(name) }
        case .gguf:
            guard let path = Self.scratchFile(bytes, suffix: ".gguf"), let model = try? GGUFModel(path: path) else { return }
            for layer in 0..<min(model.config.layerCount, 4) { _ = try? model.layer(layer) }
        case .config:
            _ = try? ModelConfig(huggingFaceJSON: Data(bytes), path: "config.json")
        case .route:
            Self.route(bytes)
        }
    }

    /// The first byte picks E (1…64), the second K (1…E), the third the devices (1…E); the rest are ids (one byte
    /// each, not reduced: out-of-range and duplicate ids must be refused) and weights.
    private static func route(_ bytes: [UInt8]) {
        guard bytes.count >= 3 else { return }
        let e = Int(bytes[0] % 64) + 1, k = Int(bytes[1]) % e + 1, d = Int(bytes[2]) % e + 1
        let body = Array(bytes.dropFirst(3))
        let t = body.count / (k * 2)
        let ids = (0..<(t * k)).map { Int64(Int8(bitPattern: body[$0])) }
        let weights = (0..<(t * k)).map { Float(body[t * k + $0]) / 255 }
        guard let selected = try? Tensor(shape: [t, k], storage: ids), let w = try? Tensor(shape: [t, k], storage: weights),
              let routes = try? RouteAssignments(selectedExperts: selected, routingWeights: w, expertCount: e) else { return }
        _ = DispatchTables.prepareMoEMappingTensor(routes)
        _ = try? DispatchTables.prepareMoERoutingTensors(routes, deviceCount: d)
    }

    /// Writes `bytes` to a per-process scratch file (the readers take paths: they map files) and returns its path.
    private static func scratchFile(_ bytes: [UInt8], suffix: String) -> String? {
        let path = "/tmp/moe-fuzz-\(getpid())\(suffix)"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return written == bytes.count ? path : nil
    }
}

#if FUZZING
/// libFuzzer's entry point; `MOE_FUZZ_TARGET` names the target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let target = getenv("MOE_FUZZ_TARGET").flatMap { FuzzTarget(rawValue: String(cString: $0)) } ?? .safetensors
    target.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
@main
enum Replay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: moe-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE…")
            exit(2)
        }
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else {
                print("moe-fuzz: cannot read \(path)")
                exit(1)
            }
            target.run([UInt8](data))
        }
        print("moe-fuzz: \(arguments.count - 1) inputs through \(target.rawValue), no crash")
    }
}
#endif
