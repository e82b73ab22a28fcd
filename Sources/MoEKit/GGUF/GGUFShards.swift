/// A model stored as one GGUF file or as the split files llama.cpp's `gguf-split` writes
/// (`<name>-00001-of-00003.gguf` …, each with its own header; `split.no` 0-based, `split.count`,
/// `split.tensors.count` on every shard). The metadata is the first shard's; tensors are looked
/// up across all shards, a name held by two shards is refused.
public final class GGUFShards: Sendable {
    /// The shards in order (one for an unsplit file).
    public let files: [GGUFFile]
    private let owner: [String: Int]

    /// Opens `path`: a single `.gguf` file, or any shard of a split set (all N are opened).
    /// - Throws: ``GGUFError``, naming the shard at fault.
    public init(path: String) throws(GGUFError) {
        let paths: [String]
        if let split = Self.splitName(path) {
            paths = (1...split.count).map { split.path(shard: $0) }
        } else {
            paths = [path]
        }
        var files: [GGUFFile] = []
        for (i, shardPath) in paths.enumerated() {
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw .missingShard(path: path, shard: shardPath, reason: "not found (shard \(i + 1) of \(paths.count))")
            }
            files.append(try GGUFFile(path: shardPath))
        }
        try Self.checkSplitKeys(files)
        var owner: [String: Int] = [:]
        for (i, file) in files.enumerated() {
            for t in file.tensors {
                if let other = owner.updateValue(i, forKey: t.name) {
                    throw .duplicateTensor(path: file.path, tensor: t.name, otherPath: files[other].path)
                }
            }
        }
        if let total = try files[0].metadata.count("split.tensors.count"), total != owner.count {
            throw .splitMismatch(path: files[0].path, key: "split.tensors.count", value: "\(total)",
                                 expected: "\(owner.count) (the tensors the \(files.count) shards hold)")
        }
        self.files = files
        self.owner = owner
    }

    /// The first shard's path, the one errors about metadata name.
    public var path: String { files[0].path }

    /// The model's metadata (the first shard's).
    public var metadata: GGUFMetadata { files[0].metadata }

    /// Every tensor name, shard by shard in file order.
    public var tensorNames: [String] { files.flatMap(\.tensorNames) }

    /// The bytes of tensor `name` in whichever shard holds it; `nil` when none does.
    public func view(_ name: String) -> GGUFTensorView? {
        guard let i = owner[name] else { return nil }
        return files[i].view(name)
    }

    /// The bytes of tensor `name`.
    /// - Throws: ``GGUFError/tensorNotFound(path:tensor:)``.
    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensorView {
        guard let view = view(name) else { throw .tensorNotFound(path: path, tensor: name) }
        return view
    }

    /// `split.no` must be the shard's index and `split.count` the number of shards, on every
    /// shard of a split set; a single file may leave them out or say 0 of 1.
    private static func checkSplitKeys(_ files: [GGUFFile]) throws(GGUFError) {
        for (i, file) in files.enumerated() {
            let count = try file.metadata.count("split.count")
            let number = try file.metadata.count("split.no")
            if files.count == 1 {
                if let count, count > 1 {
                    throw .splitMismatch(path: file.path, key: "split.count", value: "\(count)",
                                         expected: "1: the file name has no -0000i-of-0000N.gguf suffix to find the other shards by")
                }
                continue
            }
            guard let count else { throw .missingKey(path: file.path, key: "split.count") }
            guard count == files.count else {
                throw .splitMismatch(path: file.path, key: "split.count", value: "\(count)", expected: "\(files.count) (from the file names)")
            }
            guard let number else { throw .missingKey(path: file.path, key: "split.no") }
            guard number == i else {
                throw .splitMismatch(path: file.path, key: "split.no", value: "\(number)", expected: "\(i) (shard \(i + 1) of \(files.count), numbered from 0)")
            }
        }
    }

    /// `<prefix>-<i>-of-<N>.gguf` with five-digit i and N (as `llama_split_path` writes them).
    struct SplitName {
        var prefix: String
        var count: Int
        func path(shard: Int) -> String {
            prefix + "-" + Self.pad(shard) + "-of-" + Self.pad(count) + ".gguf"
        }
        static func pad(_ n: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, 5 - s.count)) + s
        }
    }

    static func splitName(_ path: String) -> SplitName? {
        guard path.hasSuffix(".gguf") else { return nil }
        let stem = path.dropLast(5)
        // "-00001-of-00003": 15 characters
        guard stem.count > 15 else { return nil }
        let tail = stem.suffix(15)
        let parts = tail.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0].isEmpty, parts[2] == "of", parts[1].count == 5, parts[3].count == 5,
              parts[1].allSatisfy(\.isASCII), parts[3].allSatisfy(\.isASCII),
              let i = Int(parts[1]), let n = Int(parts[3]), n >= 1, i >= 1, i <= n else { return nil }
        return SplitName(prefix: String(stem.dropLast(15)), count: n)
    }
}
