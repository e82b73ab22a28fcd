/// All tensors of a checkpoint folder: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json` (`weight_map`: tensor name → shard file), as `save_pretrained`
/// writes them. Every file is opened and its header validated up front; tensor bytes are read on demand.
public final class TensorStore: Sendable {
    /// The checkpoint folder.
    public let directory: String
    private let files: [String: SafetensorsFile]
    private let location: [String: String]

    /// Opens the weights in `directory`.
    /// - Throws: ``SafetensorsError`` for a bad file or index, ``CheckpointError/noWeights(directory:)``.
    public init(directory: String) throws {
        self.directory = directory
        let single = directory + "/model.safetensors"
        let index = directory + "/model.safetensors.index.json"
        var files: [String: SafetensorsFile] = [:]
        var location: [String: String] = [:]
        if FileManager.default.fileExists(atPath: index) {
            struct Index: Decodable { var weight_map: [String: String] }
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: index)) } catch {
                throw SafetensorsError.invalidIndex(path: index, reason: "cannot read the file")
            }
            let parsed: Index
            do { parsed = try JSONDecoder().decode(Index.self, from: data) } catch {
                throw SafetensorsError.invalidIndex(path: index, reason: "not JSON with a 'weight_map' object of tensor name → file name")
            }
            for shard in Set(parsed.weight_map.values).sorted() {
                guard !shard.contains("/"), !shard.hasPrefix(".") else {
                    throw SafetensorsError.invalidIndex(path: index, reason: "shard name '\(shard)' must be a plain file name in the folder")
                }
                files[shard] = try SafetensorsFile(path: directory + "/" + shard)
            }
            for (name, shard) in parsed.weight_map {
                guard files[shard]?.contains(name) == true else {
                    throw SafetensorsError.invalidIndex(path: index, reason: "tensor '\(name)' is mapped to \(shard), which does not contain it")
                }
                location[name] = shard
            }
        } else if FileManager.default.fileExists(atPath: single) {
            let file = try SafetensorsFile(path: single)
            files["model.safetensors"] = file
            for name in file.tensorNames { location[name] = "model.safetensors" }
        } else {
            throw CheckpointError.noWeights(directory: directory)
        }
        self.files = files
        self.location = location
    }

    /// Every tensor name, sorted.
    public var tensorNames: [String] { location.keys.sorted() }

    /// Whether the checkpoint holds `name`.
    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// The header entry of `name` (dtype, shape) without reading its bytes.
    public func entry(_ name: String) -> SafetensorsEntry? {
        location[name].flatMap { files[$0]?.entries[name] }
    }

    /// The path of the file holding `name`, for messages.
    public func path(of name: String) -> String {
        location[name].map { directory + "/" + $0 } ?? directory
    }

    /// The bytes of `name` where they lie in its mapped file: no copy.
    /// - Throws: ``CheckpointError/missingTensor(name:directory:hint:)``.
    func view(_ name: String) throws -> TensorView {
        guard let file = location[name].flatMap({ files[$0] }), let entry = file.entries[name], let view = file.view(name) else {
            throw CheckpointError.missingTensor(name: name, directory: directory, hint: "")
        }
        return TensorView(name: name, path: file.path, entry: entry, bytes: view.bytes, pages: view.pages)
    }

    /// Reads `name` as `Float` (exact widening), checking its shape and that every value is finite.
    /// - Throws: ``CheckpointError`` or ``SafetensorsError``, naming the file and tensor.
    public func floats(_ name: String, shape: [Int]) throws -> Tensor<Float> {
        guard let file = location[name].flatMap({ files[$0] }) else {
            throw CheckpointError.missingTensor(name: name, directory: directory, hint: "")
        }
        let raw = try file.tensor(name)
        guard let values = raw.floats else { throw CheckpointError.wrongDType(name: name, file: file.path, dtype: raw.dtype.rawValue) }
        guard values.shape == shape else {
            throw CheckpointError.wrongShape(name: name, file: file.path, expected: shape, actual: values.shape)
        }
        if let bad = values.storage.firstIndex(where: { !$0.isFinite }) {
            throw CheckpointError.nonFinite(name: name, file: file.path, index: bad)
        }
        return values
    }
}

/// One tensor's bytes in a mapped file, with what names it in messages.
struct TensorView {
    let name: String
    /// The file holding it.
    let path: String
    let entry: SafetensorsEntry
    let bytes: UnsafeRawBufferPointer
    let pages: MappedRange

    var shape: [Int] { entry.shape }
    var dtypeName: String { entry.dtypeName }
    /// Element (0, 0, …).
    var base: UnsafeRawPointer { bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64).unsafelyUnwrapped }

    /// Bytes `range` of this tensor as a releasable range of its file.
    func pages(_ range: Range<Int>) -> MappedRange {
        MappedRange(file: pages.file, range: (pages.range.lowerBound + range.lowerBound)..<(pages.range.lowerBound + range.upperBound))
    }
}
