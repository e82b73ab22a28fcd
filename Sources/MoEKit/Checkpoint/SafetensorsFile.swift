/// A memory-mapped `.safetensors` file: the header is parsed and validated against the file
/// size on open; tensor bytes are read (and copied into a ``Tensor``) only when asked for.
///
/// Format: 8-byte little-endian header length N, N bytes of JSON, then the data section.
public final class SafetensorsFile: Sendable {
    /// The file's path, used in every error message.
    public let path: String
    /// Tensor entries by name.
    public let entries: [String: SafetensorsEntry]
    /// The free-form `__metadata__` map.
    public let metadata: [String: String]

    private let mapping: MappedFile
    private let dataOffset: Int

    /// Opens and validates `path`.
    /// - Throws: ``SafetensorsError`` when the file is missing, truncated, or its header is malformed or lies.
    public init(path: String) throws(SafetensorsError) {
        self.path = path
        let mapping = try MappedFile(path: path)
        self.mapping = mapping
        let bytes = mapping.bytes
        guard bytes.count >= 8 else { throw .truncatedHeader(path: path, fileSize: bytes.count) }
        let headerSize = bytes.loadUnaligned(as: UInt64.self).littleEndian
        guard headerSize <= UInt64(bytes.count - 8) else {
            throw .headerTooLarge(path: path, headerSize: headerSize, fileSize: bytes.count)
        }
        let headerEnd = 8 + Int(headerSize)
        let header = try SafetensorsHeader.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<headerEnd]),
                                                 dataSize: bytes.count - headerEnd, path: path)
        entries = header.entries
        metadata = header.metadata
        dataOffset = headerEnd
    }

    /// Tensor names in sorted order.
    public var tensorNames: [String] { entries.keys.sorted() }

    /// Whether the file holds a tensor called `name`.
    public func contains(_ name: String) -> Bool { entries[name] != nil }

    /// The bytes of tensor `name` where they lie in the mapping (no copy), with the range to release
    /// once they have been read; `nil` when the file has no such tensor.
    func view(_ name: String) -> (bytes: UnsafeRawBufferPointer, pages: MappedRange)? {
        guard let entry = entries[name] else { return nil }
        let range = (dataOffset + entry.dataRange.lowerBound)..<(dataOffset + entry.dataRange.upperBound)
        return (UnsafeRawBufferPointer(rebasing: mapping.bytes[range]), MappedRange(file: mapping, range: range))
    }

    /// Reads tensor `name` into memory.
    /// - Throws: ``SafetensorsError/tensorNotFound(name:path:)`` or ``SafetensorsError/unsupportedDType(path:tensor:dtype:)``.
    public func tensor(_ name: String) throws(SafetensorsError) -> AnyTensor {
        guard let entry = entries[name] else { throw .tensorNotFound(name: name, path: path) }
        guard let dtype = entry.dtype else { throw .unsupportedDType(path: path, tensor: name, dtype: entry.dtypeName) }
        let raw = UnsafeRawBufferPointer(rebasing: mapping.bytes[(dataOffset + entry.dataRange.lowerBound)..<(dataOffset + entry.dataRange.upperBound)])
        switch dtype {
        case .f32: return .f32(Self.decode(raw, shape: entry.shape))
        case .bf16: return .bf16(Self.decode(raw, shape: entry.shape))
        case .f16: return .f16(Self.decode(raw, shape: entry.shape))
        case .i32: return .i32(Self.decode(raw, shape: entry.shape))
        case .u32: return .u32(Self.decode(raw, shape: entry.shape))
        case .i64: return .i64(Self.decode(raw, shape: entry.shape))
        }
    }

    /// Copies little-endian elements out of the (possibly unaligned) mapping. The header check
    /// guarantees `raw.count == shape.product * size`.
    private static func decode<Element: TensorElement>(_ raw: UnsafeRawBufferPointer, shape: [Int]) -> Tensor<Element> {
        let count = raw.count / MemoryLayout<Element>.stride
        // Never empty through `unsafeUninitializedCapacity` (see `Array.init(wireBytes:)`).
        let storage = count == 0 ? [] : [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
            initialized = count
        }
        var tensor = Tensor<Element>(shape: [], repeating: .zero)
        tensor = (try? Tensor(shape: shape, storage: storage)) ?? tensor
        return tensor
    }
}

/// A read-only memory map of a whole file, unmapped when released.
final class MappedFile: Sendable {
    nonisolated(unsafe) let bytes: UnsafeRawBufferPointer

    init(path: String) throws(SafetensorsError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// `size` bytes of private anonymous memory (zero-filled, resident only once written, in huge pages:
    /// ``LargePages``) for weights MoEKit makes itself (``StoredMatrices/random(format:count:rows:columns:std:seed:threads:)``):
    /// a released range gives its pages back to the system, as a packed file range does.
    /// - Throws: ``WeightError/outOfMemory(bytes:)`` when the mapping is refused.
    init(anonymous size: Int) throws(WeightError) {
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = LargePages.map(size) else { throw .outOfMemory(bytes: size) }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Drops the pages wholly inside `range` from this process (they stay in the page cache and are
    /// read again if touched; anonymous pages are freed and read back as zeros): a weight packed into
    /// MoEKit's own layout is not resident twice.
    func release(_ range: Range<Int>) {
        guard let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + range.lowerBound + page - 1) / page * page
        let end = (Int(bitPattern: base) + range.upperBound) / page * page
        guard end > start, let pointer = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(pointer, end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
