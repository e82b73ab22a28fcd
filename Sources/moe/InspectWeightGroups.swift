import MoEKit

/// `moe inspect`'s weight groups: stored format, tensors, bytes on disk and resident once loaded.
struct InspectWeightGroup: Encodable {
    var group: String
    var format: String
    var layers: Int
    var tensors: Int
    var bytes_on_disk: Int
    var bytes_resident: Int

    init(_ g: Checkpoint.WeightGroup) {
        group = g.kind.rawValue
        format = g.format
        layers = g.layers
        tensors = g.tensorCount
        bytes_on_disk = g.bytesOnDisk
        bytes_resident = g.residentBytes
    }

    /// The table under `weights`, indented two spaces, columns aligned.
    static func printTable(_ groups: [InspectWeightGroup]) {
        let rows = [["group", "format", "layers", "tensors", "on disk", "resident"]] + groups.map {
            [$0.group, $0.format, $0.group == Checkpoint.WeightGroup.Kind.notLoaded.rawValue ? "-" : "\($0.layers)", "\($0.tensors)",
             byteText($0.bytes_on_disk), $0.group == Checkpoint.WeightGroup.Kind.notLoaded.rawValue ? "-" : byteText($0.bytes_resident)]
        }
        let widths = rows[0].indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i < 2 ? cell + pad : pad + cell
            }
            print("  " + cells.joined(separator: "  "))
        }
    }
}

/// `1.23 MB` (decimal units), `512 B`.
func byteText(_ bytes: Int) -> String {
    let units: [(Double, String)] = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
    for (scale, unit) in units where Double(bytes) >= scale { return format(Double(bytes) / scale, 2) + " " + unit }
    return "\(bytes) B"
}
