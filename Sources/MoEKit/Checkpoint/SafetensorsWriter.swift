/// Writes tensors to a `.safetensors` file: header entries in the given order, data packed
/// back to back, header padded with spaces to a multiple of 8 bytes as the reference writer does.
public enum SafetensorsWriter {
    /// Writes `tensors` (name, tensor) to `path`, replacing any existing file. Each tensor's bytes go
    /// from its own storage to the file: nothing is copied into a staging buffer.
    /// - Throws: ``SafetensorsError/cannotWrite(path:reason:)``.
    public static func write(_ tensors: [(name: String, tensor: AnyTensor)], metadata: [String: String] = [:],
                             to path: String) throws(SafetensorsError) {
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for (name, tensor) in tensors {
            let count = withRawBytes(tensor) { $0.count }
            fields.append("\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + count)]}")
            offset += count
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let fd = try create(path)
        defer { close(fd) }
        var failure = withUnsafeBytes(of: UInt64(header.count).littleEndian) { writeAll(fd, $0) }
        failure = failure ?? header.withUnsafeBytes { writeAll(fd, $0) }
        for (_, tensor) in tensors where failure == nil { failure = withRawBytes(tensor) { writeAll(fd, $0) } }
        if let failure { throw .cannotWrite(path: path, reason: failure) }
    }

    /// Writes raw bytes to `path` (also used for reports).
    public static func writeFile(_ bytes: [UInt8], to path: String) throws(SafetensorsError) {
        let fd = try create(path)
        defer { close(fd) }
        if let failure = bytes.withUnsafeBytes({ writeAll(fd, $0) }) { throw .cannotWrite(path: path, reason: failure) }
    }

    /// `path` opened for writing, created or truncated.
    private static func create(_ path: String) throws(SafetensorsError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        return fd
    }

    /// Writes all of `bytes` to `fd`; the system's reason on failure, else `nil`.
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> String? {
        guard let base = bytes.baseAddress else { return nil }
        var written = 0
        while written < bytes.count {
            let n = posixWrite(fd, base + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return n == 0 ? "wrote nothing" : String(cString: strerror(errno)) }
            written += n
        }
        return nil
    }

    /// `body` over a tensor's element bytes, in place.
    private static func withRawBytes<R>(_ tensor: AnyTensor, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch tensor {
        case .f32(let t): t.storage.withUnsafeBytes(body)
        case .bf16(let t): t.storage.withUnsafeBytes(body)
        case .f16(let t): t.storage.withUnsafeBytes(body)
        case .i32(let t): t.storage.withUnsafeBytes(body)
        case .u32(let t): t.storage.withUnsafeBytes(body)
        case .i64(let t): t.storage.withUnsafeBytes(body)
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
