/// Everything that can be wrong with a GGUF file, a set of split GGUF files, or the model they
/// describe. Each message names the file and the key, tensor or layer, and the value it found.
public enum GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// Something the file claims (`what`, read at byte `offset`) needs `needed` bytes; `available` remain.
    case truncated(path: String, what: String, offset: Int, needed: UInt64, available: Int)
    /// The file does not start with `GGUF`; `found` is what it starts with.
    case badMagic(path: String, found: [UInt8])
    /// A GGUF version other than 2 or 3.
    case unsupportedVersion(path: String, version: UInt32)
    /// A big-endian file (its version reads byte-swapped).
    case bigEndian(path: String, version: UInt32)
    /// A count in the header (`what`) larger than the bytes left could possibly hold.
    case countTooLarge(path: String, what: String, value: UInt64, limit: Int)
    /// Metadata key `key` has a value type outside 0…12.
    case invalidValueType(path: String, key: String, type: UInt32)
    /// Array key `key` has an element type outside 0…12.
    case invalidArrayType(path: String, key: String, type: UInt32)
    /// Array key `key` holds arrays, which GGUF readers refuse.
    case nestedArray(path: String, key: String)
    /// BOOL key `key` is stored as a byte other than 0 or 1.
    case invalidBool(path: String, key: String, value: UInt8)
    /// Metadata key `key` appears twice.
    case duplicateKey(path: String, key: String)
    /// `general.alignment` is not a positive power of two.
    case invalidAlignment(path: String, value: String)
    /// Tensor `tensor` appears twice, in `path` or also in `otherPath` (another shard).
    case duplicateTensor(path: String, tensor: String, otherPath: String)
    /// Tensor `tensor` has more than 4 dimensions.
    case tooManyDimensions(path: String, tensor: String, count: UInt32)
    /// Tensor `tensor`'s `ne[index]` is out of range.
    case invalidDimension(path: String, tensor: String, index: Int, value: UInt64)
    /// Tensor `tensor` has a ggml type id that is not a ``GGMLType``.
    case unknownType(path: String, tensor: String, typeID: UInt32)
    /// Tensor `tensor` has a type id ggml has removed (`name`, e.g. Q4_0_4_4).
    case removedType(path: String, tensor: String, typeID: UInt32, name: String)
    /// Tensor `tensor`'s innermost dimension is not a whole number of `type`'s blocks.
    case blockMismatch(path: String, tensor: String, type: GGMLType, innerDimension: Int)
    /// Tensor `tensor`'s element or byte count overflows.
    case sizeOverflow(path: String, tensor: String, dims: [UInt64])
    /// Tensor `tensor`'s data offset is not a multiple of the alignment.
    case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// Tensor `tensor`'s bytes end past the data section (a truncated file).
    case tensorPastEnd(path: String, tensor: String, offset: UInt64, size: Int, dataSize: Int)
    /// Tensor `tensor`'s bytes overlap those of tensor `other`.
    case overlappingTensors(path: String, tensor: String, offset: UInt64, other: String, otherEnd: Int)
    /// Split files: a shard that is missing, or whose `split.*` keys disagree with the set.
    case missingShard(path: String, shard: String, reason: String)
    /// A shard's `split.*` key `key` holds `value` where the set implies `expected`.
    case splitMismatch(path: String, key: String, value: String, expected: String)
    /// No shard holds a tensor called `tensor`.
    case tensorNotFound(path: String, tensor: String)
    /// Metadata: a required key is absent, has the wrong type, or a value out of range.
    case missingKey(path: String, key: String)
    /// Metadata key `key` holds `found` where `expected` is needed.
    case wrongKeyType(path: String, key: String, expected: String, found: String)
    /// Metadata key `key` holds a value out of range; `reason` says which.
    case invalidKey(path: String, key: String, value: String, reason: String)
    /// `general.architecture` is not one of ``GGUFArchitecture``.
    case unsupportedArchitecture(path: String, architecture: String)
    /// A tensor whose ggml dims (ne[0] innermost) disagree with what the metadata implies.
    case tensorShape(path: String, tensor: String, dims: [Int], expected: [Int], from: String)
    /// A tensor whose expert dimension disagrees with `<arch>.expert_count`.
    case expertCountMismatch(path: String, tensor: String, dims: [Int], experts: Int, key: String, value: Int)
    /// Tensor `tensor` is of a type MoEKit cannot use there; `reason` says why.
    case wrongTensorType(path: String, tensor: String, type: GGMLType, reason: String)
    /// A block index outside `0..<layerCount`.
    case layerOutOfRange(path: String, layer: Int, layerCount: Int)
    /// The mapped `ModelConfig` fails MoEKit's own checks.
    case invalidConfig(path: String, reason: String)

    /// One line starting with the file's path, naming the key, tensor or shard and the value.
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
