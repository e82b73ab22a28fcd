/// Everything that can be wrong with a GGUF file, a set of split GGUF files, or the model they
/// describe. Each message names the file and the key, tensor or layer, and the value it found.
public enum GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    /// Something the file claims (`what`, read at byte `offset`) needs `needed` bytes; `available` remain.
    case truncated(path: String, what: String, offset: Int, needed: UInt64, available: Int)
    case badMagic(path: String, found: [UInt8])
    case unsupportedVersion(path: String, version: UInt32)
    case bigEndian(path: String, version: UInt32)
    /// A count in the header (`what`) larger than the bytes left could possibly hold.
    case countTooLarge(path: String, what: String, value: UInt64, limit: Int)
    case invalidValueType(path: String, key: String, type: UInt32)
    case invalidArrayType(path: String, key: String, type: UInt32)
    case nestedArray(path: String, key: String)
    case invalidBool(path: String, key: String, value: UInt8)
    case duplicateKey(path: String, key: String)
    case invalidAlignment(path: String, value: String)
    case duplicateTensor(path: String, tensor: String, otherPath: String)
    case tooManyDimensions(path: String, tensor: String, count: UInt32)
    case invalidDimension(path: String, tensor: String, index: Int, value: UInt64)
    case unknownType(path: String, tensor: String, typeID: UInt32)
    case removedType(path: String, tensor: String, typeID: UInt32, name: String)
    case blockMismatch(path: String, tensor: String, type: GGMLType, innerDimension: Int)
    case sizeOverflow(path: String, tensor: String, dims: [UInt64])
    case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    case tensorPastEnd(path: String, tensor: String, offset: UInt64, size: Int, dataSize: Int)
    case overlappingTensors(path: String, tensor: String, offset: UInt64, other: String, otherEnd: Int)
    /// Split files: a shard that is missing, or whose `split.*` keys disagree with the set.
    case missingShard(path: String, shard: String, reason: String)
    case splitMismatch(path: String, key: String, value: String, expected: String)
    case tensorNotFound(path: String, tensor: String)
    /// Metadata: a required key is absent, has the wrong type, or a value out of range.
    case missingKey(path: String, key: String)
    case wrongKeyType(path: String, key: String, expected: String, found: String)
    case invalidKey(path: String, key: String, value: String, reason: String)
    case unsupportedArchitecture(path: String, architecture: String)
    /// A tensor whose ggml dims (ne[0] innermost) disagree with what the metadata implies.
    case tensorShape(path: String, tensor: String, dims: [Int], expected: [Int], from: String)
    /// A tensor whose expert dimension disagrees with `<arch>.expert_count`.
    case expertCountMismatch(path: String, tensor: String, dims: [Int], experts: Int, key: String, value: Int)
    case wrongTensorType(path: String, tensor: String, type: GGMLType, reason: String)
    case layerOutOfRange(path: String, layer: Int, layerCount: Int)
    /// The mapped `ModelConfig` fails MoEKit's own checks.
    case invalidConfig(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "\(path): cannot open: \(reason)"
        case .truncated(let path, let what, let offset, let needed, let available):
            "\(path): \(what) at byte \(offset) needs \(needed) bytes but only \(available) remain (truncated or corrupt GGUF)"
        case .badMagic(let path, let found):
            "\(path): not a GGUF file: magic \(Self.show(found)) (expected \"GGUF\")"
        case .unsupportedVersion(let path, let version):
            "\(path): GGUF version \(version) is not supported (MoEKit reads versions 2 and 3)"
        case .bigEndian(let path, let version):
            "\(path): big-endian GGUF (version \(version) byte-swapped) is not supported; convert it little-endian"
        case .countTooLarge(let path, let what, let value, let limit):
            "\(path): \(what) \(value) is impossible: the rest of the file has room for at most \(limit)"
        case .invalidValueType(let path, let key, let type):
            "\(path): key '\(key)' has value type \(type), which is not a GGUF type (0...12)"
        case .invalidArrayType(let path, let key, let type):
            "\(path): array key '\(key)' has element type \(type), which is not a GGUF type (0...12)"
        case .nestedArray(let path, let key): "\(path): key '\(key)' is an array of arrays, which GGUF readers do not accept"
        case .invalidBool(let path, let key, let value): "\(path): key '\(key)' is a bool stored as \(value) (must be 0 or 1)"
        case .duplicateKey(let path, let key): "\(path): key '\(key)' appears twice"
        case .invalidAlignment(let path, let value):
            "\(path): general.alignment = \(value) must be a positive power of two"
        case .duplicateTensor(let path, let tensor, let other):
            other == path ? "\(path): tensor '\(tensor)' appears twice" : "\(path): tensor '\(tensor)' is also in \(other)"
        case .tooManyDimensions(let path, let tensor, let count):
            "\(path): tensor '\(tensor)' has n_dims = \(count) (ggml allows at most 4)"
        case .invalidDimension(let path, let tensor, let index, let value):
            "\(path): tensor '\(tensor)' has ne[\(index)] = \(value), out of range"
        case .unknownType(let path, let tensor, let id):
            "\(path): tensor '\(tensor)' has ggml type id \(id), which is not a ggml type"
        case .removedType(let path, let tensor, let id, let name):
            "\(path): tensor '\(tensor)' has ggml type id \(id) (\(name)), which ggml has removed; re-quantize the model"
        case .blockMismatch(let path, let tensor, let type, let inner):
            "\(path): tensor '\(tensor)' is \(type) (blocks of \(type.blockSize)) but ne[0] = \(inner) is not a multiple of \(type.blockSize)"
        case .sizeOverflow(let path, let tensor, let dims):
            "\(path): tensor '\(tensor)' with dims \(dims) is too large to address"
        case .misalignedOffset(let path, let tensor, let offset, let alignment):
            "\(path): tensor '\(tensor)' has data offset \(offset), not a multiple of the alignment \(alignment)"
        case .tensorPastEnd(let path, let tensor, let offset, let size, let dataSize):
            "\(path): tensor '\(tensor)' (\(size) bytes at data offset \(offset)) ends past the data section (\(dataSize) bytes; truncated file?)"
        case .overlappingTensors(let path, let tensor, let offset, let other, let otherEnd):
            "\(path): tensor '\(tensor)' at data offset \(offset) overlaps tensor '\(other)', which ends at \(otherEnd)"
        case .missingShard(let path, let shard, let reason): "\(path): split shard \(shard): \(reason)"
        case .splitMismatch(let path, let key, let value, let expected):
            "\(path): \(key) = \(value), expected \(expected)"
        case .tensorNotFound(let path, let tensor): "\(path): no tensor named '\(tensor)'"
        case .missingKey(let path, let key): "\(path): missing required key '\(key)'"
        case .wrongKeyType(let path, let key, let expected, let found):
            "\(path): key '\(key)' is \(found), expected \(expected)"
        case .invalidKey(let path, let key, let value, let reason): "\(path): \(key) = \(value) \(reason)"
        case .unsupportedArchitecture(let path, let arch):
            "\(path): general.architecture = '\(arch)' is not supported (supported: \(GGUFArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .tensorShape(let path, let tensor, let dims, let expected, let from):
            "\(path): tensor '\(tensor)' has ggml dims \(dims) (ne[0] innermost), expected \(expected) from \(from)"
        case .expertCountMismatch(let path, let tensor, let dims, let experts, let key, let value):
            "\(path): tensor '\(tensor)' (ggml dims \(dims)) holds \(experts) experts but \(key) = \(value)"
        case .wrongTensorType(let path, let tensor, let type, let reason): "\(path): tensor '\(tensor)' is \(type): \(reason)"
        case .layerOutOfRange(let path, let layer, let count):
            "\(path): layer \(layer) is out of range: the model has \(count) blocks (0...\(count - 1))"
        case .invalidConfig(let path, let reason): "\(path): \(reason)"
        }
    }

    private static func show(_ bytes: [UInt8]) -> String {
        let printable = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        if printable { return "\"" + String(decoding: bytes, as: UTF8.self) + "\"" }
        return "0x" + bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}
