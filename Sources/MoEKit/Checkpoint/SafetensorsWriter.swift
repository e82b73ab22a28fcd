/// Writes tensors to a `.safetensors` file: header entries in the given order, data packed
/// back to back, header padded with spaces to a multiple of 8 bytes as the reference writer does.
public enum SafetensorsWriter {
    /// Writes `tensors` (name, tensor) to `path`, replacing any existing file.
    /// - Throws: ``SafetensorsError/cannotWrite(path:reason:)``.
    public static func write(_ tensors: [(name: String, tensor: AnyTensor)], metadata: [String: String] = [:],
                             to path: String) throws(SafetensorsError) {
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        var payload: [UInt8] = []
        for (name, tensor) in tensors {
            let bytes = rawBytes(tensor)
            fields.append("\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes.count)]}")
            offset += bytes.count
            payload += bytes
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var file: [UInt8] = []
        file.reserveCapacity(8 + headerBytes.count + payload.count)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { file += $0 }
        file += headerBytes
        file += payload
        try writeFile(file, to: path)
    }

    /// Writes raw bytes to `path` (also used for reports).
    public static func writeFile(_ bytes: [UInt8], to path: String) throws(SafetensorsError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { posixWrite(fd, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
            written += n
        }
    }

    private static func rawBytes(_ tensor: AnyTensor) -> [UInt8] {
        switch tensor {
        case .f32(let t): t.storage.withUnsafeBytes { Array($0) }
        case .bf16(let t): t.storage.withUnsafeBytes { Array($0) }
        case .f16(let t): t.storage.withUnsafeBytes { Array($0) }
        case .i32(let t): t.storage.withUnsafeBytes { Array($0) }
        case .u32(let t): t.storage.withUnsafeBytes { Array($0) }
        case .i64(let t): t.storage.withUnsafeBytes { Array($0) }
        }
    }

    /// A JSON string literal with the escapes JSON requires.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
