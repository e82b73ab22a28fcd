/// One memory-mapped GGUF file (version 2 or 3, little-endian): header, metadata, tensor infos
/// and data section, every count, length, dimension, offset and size checked against the file
/// on open. Tensor bytes are never copied: ``view(_:)`` points into the mapping.
///
/// Layout: magic `GGUF`, UINT32 version, UINT64 tensor count, UINT64 key–value count, the
/// key–values, the tensor infos (name, UINT32 n_dims, n_dims × UINT64 ne, UINT32 ggml type,
/// UINT64 offset), padding to `general.alignment` (default 32), then the data section.
public final class GGUFFile: Sendable {
    /// The file's path, in every error message.
    public let path: String
    /// The GGUF version: 2 or 3.
    public let version: UInt32
    /// The metadata key–values.
    public let metadata: GGUFMetadata
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32.
    public let alignment: Int
    /// Where the data section starts in the file.
    public let dataOffset: Int
    private let index: [String: Int]
    let mapping: MappedFile

    /// The alignment GGUF assumes when `general.alignment` is absent.
    public static let defaultAlignment = 32

    /// Opens, maps and validates `path`.
    /// - Throws: ``GGUFError``, naming the file and the key or tensor at fault.
    public init(path: String) throws(GGUFError) {
        let mapping: MappedFile
        do {
            mapping = try MappedFile(path: path)
        } catch {
            if case .cannotOpen(_, let reason) = error { throw .cannotOpen(path: path, reason: reason) }
            throw .cannotOpen(path: path, reason: error.description)
        }
        let header = try GGUFHeader(mapping: mapping, path: path)
        self.path = path
        self.mapping = mapping
        version = header.version
        metadata = header.metadata
        tensors = header.tensors
        alignment = header.alignment
        dataOffset = header.dataOffset
        var index: [String: Int] = [:]
        for (i, t) in header.tensors.enumerated() { index[t.name] = i }
        self.index = index
    }

    /// Tensor names in file order.
    public var tensorNames: [String] { tensors.map(\.name) }

    /// The header entry of tensor `name`; `nil` when the file has no such tensor.
    public func info(_ name: String) -> GGUFTensorInfo? { index[name].map { tensors[$0] } }

    /// The bytes of tensor `name` where they lie; `nil` when the file has no such tensor.
    public func view(_ name: String) -> GGUFTensorView? {
        guard let info = info(name) else { return nil }
        let start = dataOffset + info.offset
        let range = start..<(start + info.byteCount)
        return GGUFTensorView(info: info, path: path, bytes: UnsafeRawBufferPointer(rebasing: mapping.bytes[range]),
                              file: mapping, fileRange: range)
    }

    /// The bytes of tensor `name`.
    /// - Throws: ``GGUFError/tensorNotFound(path:tensor:)``.
    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensorView {
        guard let view = view(name) else { throw .tensorNotFound(path: path, tensor: name) }
        return view
    }
}

/// The parse of a GGUF header: everything before the data section, and the placement of every
/// tensor inside it.
struct GGUFHeader {
    var version: UInt32 = 0
    var metadata: GGUFMetadata
    var tensors: [GGUFTensorInfo] = []
    var alignment = GGUFFile.defaultAlignment
    var dataOffset = 0

    /// Smallest possible metadata entry: 8-byte key length, 4-byte type, 1-byte value.
    static let smallestEntry = 13
    /// Smallest possible tensor info: 8-byte name length, 4-byte n_dims, 4-byte type, 8-byte offset.
    static let smallestTensorInfo = 24

    init(mapping: MappedFile, path: String) throws(GGUFError) {
        var cursor = GGUFCursor(bytes: mapping.bytes, path: path)
        let magicStart = try cursor.take(4, "the magic")
        let magic = Array(mapping.bytes[magicStart..<(magicStart + 4)])
        guard magic == Array("GGUF".utf8) else { throw .badMagic(path: path, found: magic) }
        version = try cursor.u32("the version")
        if version & 0xFFFF == 0, (1...3).contains(version.byteSwapped) {
            throw .bigEndian(path: path, version: version.byteSwapped)
        }
        guard version == 2 || version == 3 else { throw .unsupportedVersion(path: path, version: version) }
        let tensorCount = try cursor.u64("the tensor count")
        let entryCount = try cursor.u64("the metadata key count")

        // Counts first, against the bytes that remain, before anything is sized by them.
        let entryLimit = cursor.remaining / Self.smallestEntry
        guard entryCount <= UInt64(entryLimit) else {
            throw .countTooLarge(path: path, what: "metadata key count", value: entryCount, limit: entryLimit)
        }
        let tensorLimit = (cursor.remaining - Int(entryCount) * Self.smallestEntry) / Self.smallestTensorInfo
        guard tensorCount <= UInt64(tensorLimit) else {
            throw .countTooLarge(path: path, what: "tensor count", value: tensorCount, limit: tensorLimit)
        }

        var keys: [String] = []
        var values: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(entryCount))
        for i in 0..<Int(entryCount) {
            let key = try cursor.string("the key of metadata entry \(i)")
            let rawType = try cursor.u32("the value type of key '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .invalidValueType(path: path, key: key, type: rawType)
            }
            let value = try cursor.value(type, key: key, file: mapping)
            guard values.updateValue(value, forKey: key) == nil else { throw .duplicateKey(path: path, key: key) }
            keys.append(key)
        }
        metadata = GGUFMetadata(path: path, keys: keys, values: values)
        alignment = try Self.alignment(values["general.alignment"], path: path)

        var names = Set<String>()
        tensors.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let info = try Self.tensorInfo(&cursor, number: i, path: path)
            guard names.insert(info.name).inserted else {
                throw .duplicateTensor(path: path, tensor: info.name, otherPath: path)
            }
            tensors.append(info)
        }

        // Data section: aligned after the infos (cursor.offset ≤ file size, alignment ≤ 2^32).
        dataOffset = (cursor.offset + alignment - 1) / alignment * alignment
        let dataSize = max(0, mapping.bytes.count - dataOffset)
        for t in tensors {
            guard t.offset % alignment == 0 else {
                throw .misalignedOffset(path: path, tensor: t.name, offset: UInt64(t.offset), alignment: alignment)
            }
            guard t.offset <= dataSize, t.byteCount <= dataSize - t.offset else {
                throw .tensorPastEnd(path: path, tensor: t.name, offset: UInt64(t.offset), size: t.byteCount, dataSize: dataSize)
            }
        }
        let byOffset = tensors.sorted { ($0.offset, $0.byteCount) < ($1.offset, $1.byteCount) }
        for (previous, t) in zip(byOffset, byOffset.dropFirst()) where t.offset < previous.offset + previous.byteCount {
            throw .overlappingTensors(path: path, tensor: t.name, offset: UInt64(t.offset), other: previous.name,
                                      otherEnd: previous.offset + previous.byteCount)
        }
    }

    /// `general.alignment`: any integer type, a power of two in 1...2^32.
    static func alignment(_ value: GGUFValue?, path: String) throws(GGUFError) -> Int {
        guard let value else { return GGUFFile.defaultAlignment }
        guard let a = value.integer, a > 0, a <= 1 << 32, a & (a - 1) == 0 else {
            throw .invalidAlignment(path: path, value: value.integer == nil ? "\(value.type) \(value)" : "\(value)")
        }
        return Int(a)
    }

    /// One tensor info, its dims, type and size checked (its placement is checked by the caller).
    static func tensorInfo(_ cursor: inout GGUFCursor, number i: Int, path: String) throws(GGUFError) -> GGUFTensorInfo {
        let name = try cursor.string("the name of tensor \(i)")
        let dimCount = try cursor.u32("n_dims of tensor '\(name)'")
        guard dimCount <= 4 else { throw .tooManyDimensions(path: path, tensor: name, count: dimCount) }
        var raw: [UInt64] = []
        for d in 0..<Int(dimCount) { raw.append(try cursor.u64("ne[\(d)] of tensor '\(name)'")) }
        let typeID = try cursor.u32("the ggml type of tensor '\(name)'")
        let offset = try cursor.u64("the data offset of tensor '\(name)'")
        var dims: [Int] = []
        for (d, ne) in raw.enumerated() {
            guard let n = Int(exactly: ne), n <= Int(Int64.max) else {
                throw .invalidDimension(path: path, tensor: name, index: d, value: ne)
            }
            dims.append(n)
        }
        guard let type = GGMLType(rawValue: typeID) else {
            if let removed = GGMLType.removedName(id: typeID) {
                throw .removedType(path: path, tensor: name, typeID: typeID, name: removed)
            }
            throw .unknownType(path: path, tensor: name, typeID: typeID)
        }
        let inner = dims.first ?? 1
        guard inner % type.blockSize == 0 else { throw .blockMismatch(path: path, tensor: name, type: type, innerDimension: inner) }
        var elements = 1
        for n in dims {
            let (product, overflow) = elements.multipliedReportingOverflow(by: n)
            guard !overflow else { throw .sizeOverflow(path: path, tensor: name, dims: raw) }
            elements = product
        }
        var bytes = type.rowBytes(elements: inner) ?? 0
        for n in dims.dropFirst() {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: n)
            guard !overflow else { throw .sizeOverflow(path: path, tensor: name, dims: raw) }
            bytes = product
        }
        guard let start = Int(exactly: offset) else {
            throw .tensorPastEnd(path: path, tensor: name, offset: offset, size: bytes, dataSize: cursor.bytes.count)
        }
        return GGUFTensorInfo(name: name, dims: dims, type: type, offset: start, byteCount: bytes)
    }
}
