/// Everything that can be wrong with a `.safetensors` file or a checkpoint folder.
/// Each message names the file and, where there is one, the tensor.
public enum SafetensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file cannot be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The file is shorter than the 8-byte header length.
    case truncatedHeader(path: String, fileSize: Int)
    /// The header length runs past the end of the file.
    case headerTooLarge(path: String, headerSize: UInt64, fileSize: Int)
    /// The header is not a JSON object of tensor entries.
    case invalidHeader(path: String, reason: String)
    /// Tensor `tensor` has a dtype MoEKit does not read as a ``Tensor``.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// Tensor `tensor`'s `data_offsets` or shape are inconsistent: outside the data section, overlapping
    /// another tensor, or not `shape × dtype size` bytes.
    case badOffsets(path: String, tensor: String, reason: String)
    /// No tensor is called `name`.
    case tensorNotFound(name: String, path: String)
    /// `model.safetensors.index.json` cannot be read or names a bad shard.
    case invalidIndex(path: String, reason: String)
    /// The file cannot be written.
    case cannotWrite(path: String, reason: String)

    /// One line naming the file and, where there is one, the tensor.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "\(path): cannot open: \(reason)"
        case .truncatedHeader(let path, let size):
            "\(path): truncated: \(size) bytes is too short for a safetensors header"
        case .headerTooLarge(let path, let header, let size):
            "\(path): header claims \(header) bytes but the file has \(size) bytes (truncated or not safetensors)"
        case .invalidHeader(let path, let reason): "\(path): invalid safetensors header: \(reason)"
        case .unsupportedDType(let path, let tensor, let dtype):
            "\(path): tensor '\(tensor)' has dtype \(dtype), which MoEKit does not read (F32, BF16, F16, I32, U32, I64)"
        case .badOffsets(let path, let tensor, let reason): "\(path): tensor '\(tensor)': \(reason)"
        case .tensorNotFound(let name, let path): "\(path): no tensor named '\(name)'"
        case .invalidIndex(let path, let reason): "\(path): invalid checkpoint index: \(reason)"
        case .cannotWrite(let path, let reason): "\(path): cannot write: \(reason)"
        }
    }
}
