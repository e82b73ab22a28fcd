/// Everything that can be wrong with a `.safetensors` file or a checkpoint folder.
/// Each message names the file and, where there is one, the tensor.
public enum SafetensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case truncatedHeader(path: String, fileSize: Int)
    case headerTooLarge(path: String, headerSize: UInt64, fileSize: Int)
    case invalidHeader(path: String, reason: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case badOffsets(path: String, tensor: String, reason: String)
    case tensorNotFound(name: String, path: String)
    case invalidIndex(path: String, reason: String)
    case cannotWrite(path: String, reason: String)

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
