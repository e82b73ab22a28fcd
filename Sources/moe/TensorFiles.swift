import MoEKit

/// Reading the named tensors of an input file, with errors that name the file and tensor.
extension SafetensorsFile {
    func floats(_ name: String) throws -> Tensor<Float> {
        guard contains(name) else { throw SafetensorsError.tensorNotFound(name: name, path: path) }
        do { return try tensor(name).floats(named: name) } catch let error as TensorError { throw CLIError.inFile(path, "\(error)") }
    }

    func indices(_ name: String) throws -> Tensor<Int64> {
        guard contains(name) else { throw SafetensorsError.tensorNotFound(name: name, path: path) }
        do { return try tensor(name).indices(named: name) } catch let error as TensorError { throw CLIError.inFile(path, "\(error)") }
    }
}

/// Errors of the command line itself.
enum CLIError: Error, CustomStringConvertible {
    case inFile(String, String)
    case invalidOption(String)

    var description: String {
        switch self {
        case .inFile(let path, let message): "\(path): \(message)"
        case .invalidOption(let message): message
        }
    }
}
