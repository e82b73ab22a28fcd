// Plain-text formatting shared by the reports (no Foundation number formatting needed).

/// Prints `rows` (the first is the header) as aligned columns: the first left-aligned, the rest right-aligned,
/// a rule under the header.
func printColumns(_ rows: [[String]]) {
    guard let header = rows.first else { return }
    let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
    for (n, row) in rows.enumerated() {
        let cells = row.enumerated().map { i, cell in
            i == 0 ? cell + String(repeating: " ", count: widths[i] - cell.count)
                : String(repeating: " ", count: widths[i] - cell.count) + cell
        }
        print(cells.joined(separator: "  "))
        if n == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
    }
}

/// `value` with `digits` decimals (no Foundation formatting needed).
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (abs(value) * scale).rounded() / scale
    var text = String(Int(rounded))
    if digits > 0 {
        let fraction = Int(((rounded - rounded.rounded(.down)) * scale).rounded())
        let f = String(fraction)
        text += "." + String(repeating: "0", count: max(0, digits - f.count)) + f
    }
    return (value < 0 ? "-" : "") + text
}

/// `value` as `d.dde±x`.
func scientific(_ value: Double) -> String {
    guard value.isFinite, value != 0 else { return "\(value)" }
    var exponent = 0
    var mantissa = abs(value)
    while mantissa >= 10 { mantissa /= 10; exponent += 1 }
    while mantissa < 1 { mantissa *= 10; exponent -= 1 }
    return (value < 0 ? "-" : "") + format(mantissa, 2) + "e" + (exponent < 0 ? "-" : "+") + String(abs(exponent))
}
